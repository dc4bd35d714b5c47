import "vitest";

declare module "vitest" {
  export interface ProvidedContext {
    /** A cluster-admin kubeconfig for the shared API server. */
    kubeconfigPath: string;
    /** True when the tests run against a cluster given by CADENT_TEST_KUBECONFIG. */
    externalCluster: boolean;
    /** True when kube-controller-manager, the scheduler and kwok's fake Node run Jobs to completion. */
    jobsRun: boolean;
    /** The shared Redis, e.g. redis://127.0.0.1:40123/0. Tests use their own key prefixes or DB numbers. */
    redisUrl: string;
    /** The Celery virtualenv root. */
    venv: string;
    /** The directory holding kube-apiserver, etcd, kubectl, helm, kwok... (empty for an external cluster). */
    kubeBin: string;
    /** Per-run scratch directory; logs of every process go under logs/. */
    workDir: string;
  }
}
