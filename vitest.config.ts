import { defineConfig } from "vitest/config";

// Two suites: `unit` (pure logic, no servers, fast) and `integration` (a real kube-apiserver,
// etcd, controllers, kwok, Redis and Celery, started once per run by the global setup).
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["tests/unit/**/*.test.ts"],
          environment: "node",
        },
      },
      {
        test: {
          name: "integration",
          include: ["tests/integration/**/*.test.ts"],
          environment: "node",
          globalSetup: ["tests/support/global-setup.ts"],
          testTimeout: 120_000,
          hookTimeout: 300_000,
          // The shared servers are the scarce resource on a 2-core machine: run files one at a time.
          fileParallelism: false,
        },
      },
      {
        test: {
          // Faults injected into private servers per file (tests/chaos/support/world.ts); short by
          // default, CADENT_CHAOS=full for the long version (hack/chaos.sh).
          name: "chaos",
          include: ["tests/chaos/**/*.test.ts"],
          environment: "node",
          globalSetup: ["tests/chaos/support/global-setup.ts"],
          testTimeout: 900_000,
          hookTimeout: 300_000,
          fileParallelism: false,
          // After the unit and integration suites, not beside them: a chaos world is a second
          // control plane, and its fault timings must not compete with another suite for 2 cores.
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
