/**
 * kombu's exchange bindings on Redis: one set per exchange, `_kombu.binding.<exchange>`, whose members
 * are `routing_key SEP pattern SEP queue`. kombu reads them only to route a message published to a
 * named exchange; Celery's producer uses the anonymous exchange and pushes straight onto the queue's
 * list, so a producer does not need them. Workers declare them at startup (vector w06): Celery binds
 * each queue to a direct exchange of the same name.
 */
import { LANE_SEPARATOR } from "./lanes.ts";

export interface Binding {
  readonly routingKey: string;
  /** Only topic exchanges use a pattern; direct bindings leave it empty. */
  readonly pattern: string;
  readonly queue: string;
}

export function bindingKey(exchange: string): string {
  return `_kombu.binding.${exchange}`;
}

export function bindingMember(binding: Binding): string {
  return [binding.routingKey, binding.pattern, binding.queue].join(LANE_SEPARATOR);
}

/** The binding Celery's worker declares for a queue: exchange, routing key and queue share the name. */
export function queueBinding(queue: string): { readonly key: string; readonly member: string } {
  return { key: bindingKey(queue), member: bindingMember({ routingKey: queue, pattern: "", queue }) };
}

export function parseBindingMember(member: string): Binding | null {
  const parts = member.split(LANE_SEPARATOR);
  if (parts.length !== 3) return null;
  const [routingKey = "", pattern = "", queue = ""] = parts;
  return { routingKey, pattern, queue };
}

/** The queues a direct exchange delivers a routing key to, from its binding set's members. */
export function directExchangeQueues(members: readonly string[], routingKey: string): string[] {
  const queues: string[] = [];
  for (const member of members) {
    const binding = parseBindingMember(member);
    if (binding !== null && binding.routingKey === routingKey && !queues.includes(binding.queue)) {
      queues.push(binding.queue);
    }
  }
  return queues;
}
