/**
 * The end-to-end bound: a record takes a permit before its CSV row is pulled and gives it back
 * when its bytes are in a flushed shard (or its reject is written). `maxInFlight` is the
 * instrument the backpressure test reads.
 */
export class PermitPool {
  private available: number;
  private readonly waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];
  private closedWith: Error | null = null;
  inFlight = 0;
  maxInFlight = 0;

  constructor(readonly size: number) {
    if (!Number.isInteger(size) || size < 1)
      throw new Error(`PermitPool: size must be a positive integer, got ${size}`);
    this.available = size;
  }

  acquire(): Promise<void> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    if (this.available > 0) {
      this.take();
      return Promise.resolve();
    }
    return new Promise((resolve, reject) =>
      this.waiters.push({
        resolve: () => {
          this.take();
          resolve();
        },
        reject,
      }),
    );
  }

  release(count = 1): void {
    if (count > this.inFlight)
      throw new Error(`PermitPool: releasing ${count} permits but only ${this.inFlight} are taken`);
    this.inFlight -= count;
    this.available += count;
    while (this.available > 0 && this.waiters.length > 0) this.waiters.shift()!.resolve();
  }

  /** Fails every waiting and future acquire (the pipeline stopped). */
  close(reason: Error): void {
    this.closedWith = reason;
    for (const waiter of this.waiters.splice(0)) waiter.reject(reason);
  }

  private take(): void {
    this.available--;
    this.inFlight++;
    if (this.inFlight > this.maxInFlight) this.maxInFlight = this.inFlight;
  }
}
