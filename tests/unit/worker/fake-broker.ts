/**
 * An in-memory broker with the Redis transport's semantics (lists popped from the right, the
 * unacked hash and index, results that keep a SUCCESS), driven by fake timers: a pop on empty
 * lists waits for a push or for its timeout. It records every call, so tests can state what the
 * worker asked for.
 */
import {
  decodeResult,
  decodeUnackedEntry,
  encodeRestoredMessage,
  queueKey,
  resultKey,
  unackedScore,
} from "../../../src/celery/index.ts";
import type {
  Broker,
  Commit,
  PoppedMessage,
  RestoreReport,
  UnackedRecord,
} from "../../../src/worker/broker.ts";
import { BrokerUnavailableError } from "../../../src/worker/broker.ts";

export class FakeBroker implements Broker {
  /** Redis lists: index 0 is the left end (LPUSH side); workers pop from the right. */
  readonly lists = new Map<string, string[]>();
  readonly unacked = new Map<string, string>();
  readonly unackedIndex = new Map<string, number>();
  readonly results = new Map<string, string>();
  readonly published: { channel: string; value: string }[] = [];
  readonly deadLetters: string[] = [];
  readonly bindings = new Map<string, Set<string>>();
  readonly pops: { keys: string[]; max: number }[] = [];
  readonly commits: Commit[] = [];
  readonly restoreVisibleCalls: { now: Date; visibilityTimeoutSeconds: number }[] = [];
  readonly restoredTags: string[] = [];
  readonly touches: { tags: string[]; now: Date }[] = [];
  /** Commits to fail with BrokerUnavailableError before one succeeds. */
  failCommits = 0;
  closed = false;
  #waiters: (() => void)[] = [];

  lpush(key: string, ...values: string[]): void {
    const list = this.lists.get(key) ?? [];
    for (const value of values) list.unshift(value);
    this.lists.set(key, list);
    this.#wake();
  }

  list(key: string): string[] {
    return [...(this.lists.get(key) ?? [])];
  }

  result(taskId: string): Record<string, unknown> | null {
    const value = this.results.get(resultKey(taskId));
    return value === undefined ? null : (JSON.parse(value) as Record<string, unknown>);
  }

  /** Every status written for a task, in order (what a subscriber of its channel saw). */
  statuses(taskId: string): string[] {
    return this.published
      .filter((p) => p.channel === resultKey(taskId))
      .map((p) => {
        const decoded = decodeResult(p.value);
        return decoded.ok ? decoded.meta.status : "?";
      });
  }

  #wake(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }

  async declareQueues(queues: readonly string[]): Promise<void> {
    for (const queue of queues) {
      const members = this.bindings.get(`_kombu.binding.${queue}`) ?? new Set();
      members.add(`${queue}\x06\x16\x06\x16${queue}`);
      this.bindings.set(`_kombu.binding.${queue}`, members);
    }
  }

  async pop(keys: readonly string[], max: number, timeoutSeconds: number): Promise<PoppedMessage[]> {
    this.pops.push({ keys: [...keys], max });
    const take = (): PoppedMessage[] | null => {
      for (const key of keys) {
        const list = this.lists.get(key);
        if (list === undefined || list.length === 0) continue;
        const taken = list.splice(Math.max(0, list.length - max)).reverse();
        return taken.map((raw) => ({ key, raw }));
      }
      return null;
    };
    const now = take();
    if (now !== null) return now;
    if (this.closed) return [];
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== onPush);
        resolve([]);
      }, timeoutSeconds * 1000);
      const onPush = (): void => {
        const taken = take();
        if (taken === null) {
          this.#waiters.push(onPush);
          return;
        }
        clearTimeout(timer);
        resolve(taken);
      };
      this.#waiters.push(onPush);
    });
  }

  async recordUnacked(records: readonly UnackedRecord[], now: Date): Promise<void> {
    for (const { tag, entry } of records) {
      this.unacked.set(tag, entry);
      this.unackedIndex.set(tag, unackedScore(now));
    }
  }

  async commit(commit: Commit): Promise<void> {
    if (this.failCommits > 0) {
      this.failCommits--;
      throw new BrokerUnavailableError("connection lost (fake)");
    }
    this.commits.push(commit);
    for (const { taskId, value } of commit.results) {
      const key = resultKey(taskId);
      const stored = this.results.get(key);
      if (stored !== undefined) {
        const decoded = decodeResult(stored);
        if (decoded.ok && decoded.meta.status === "SUCCESS") continue;
      }
      this.results.set(key, value);
      this.published.push({ channel: key, value });
    }
    for (const { key, text } of commit.publishes) this.lpush(key, text);
    for (const letter of commit.deadLetters) this.deadLetters.unshift(letter);
    for (const tag of commit.acks) {
      this.unacked.delete(tag);
      this.unackedIndex.delete(tag);
    }
  }

  async touchUnacked(tags: readonly string[], now: Date): Promise<void> {
    this.touches.push({ tags: [...tags], now });
    for (const tag of tags) if (this.unackedIndex.has(tag)) this.unackedIndex.set(tag, unackedScore(now));
  }

  async restoreVisible(now: Date, visibilityTimeoutSeconds: number): Promise<RestoreReport | null> {
    this.restoreVisibleCalls.push({ now, visibilityTimeoutSeconds });
    const ceiling = unackedScore(now) - visibilityTimeoutSeconds;
    const due = [...this.unackedIndex].filter(([, score]) => score <= ceiling).map(([tag]) => tag);
    return this.restore(due);
  }

  async restore(tags: readonly string[]): Promise<RestoreReport> {
    let restored = 0;
    let gone = 0;
    for (const tag of tags) {
      const entry = this.unacked.get(tag);
      this.unacked.delete(tag);
      this.unackedIndex.delete(tag);
      if (entry === undefined) {
        gone++;
        continue;
      }
      const decoded = decodeUnackedEntry(entry);
      if (!decoded.ok) throw new Error(decoded.reason);
      this.restoredTags.push(tag);
      const list = this.lists.get(queueKey(decoded.entry.routingKey)) ?? [];
      list.push(encodeRestoredMessage(decoded.entry.envelope));
      this.lists.set(queueKey(decoded.entry.routingKey), list);
      restored++;
    }
    this.#wake();
    return { restored, deadLettered: 0, gone };
  }

  async pushBack(messages: readonly PoppedMessage[]): Promise<void> {
    for (const { key, raw } of [...messages].reverse()) {
      const list = this.lists.get(key) ?? [];
      list.push(raw);
      this.lists.set(key, list);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.#wake();
  }
}
