import { Observable, type OperatorFunction } from 'rxjs';

/**
 * Re-establishes CSV row order after concurrent decoding, so shards and rejects.jsonl are the
 * same bytes whatever order decodes finish in. Items carry consecutive sequence numbers starting
 * at `first`; the buffer never holds more than the rows in flight (bounded by the permits).
 */
export function inRowOrder<T extends { seq: number }>(first: number): OperatorFunction<T, T> {
  return (source) => new Observable<T>((subscriber) => {
    const waiting = new Map<number, T>();
    let next = first;
    return source.subscribe({
      next(item) {
        waiting.set(item.seq, item);
        for (let ready = waiting.get(next); ready !== undefined; ready = waiting.get(next)) {
          waiting.delete(next);
          next++;
          subscriber.next(ready);
        }
      },
      error: (error) => subscriber.error(error),
      complete() {
        if (waiting.size > 0) subscriber.error(new Error(`inRowOrder: ${waiting.size} items never became ready (expected seq ${next})`));
        else subscriber.complete();
      },
    });
  });
}
