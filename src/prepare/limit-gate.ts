/**
 * --limit without wasted decodes: the source pauses while the records already accepted plus
 * the candidates still being decoded could reach the limit, and resumes when a decode fails.
 * Without it, every permit's worth of rows past the N-th record would be decoded and dropped.
 * Which records are kept is still decided by the sink in row order; the gate only throttles.
 */
export class LimitGate {
  private outstanding = 0;
  private waiters: (() => void)[] = [];

  constructor(
    private readonly limit: number | null,
    private accepted: number,
  ) {}

  get open(): boolean {
    return this.limit === null || this.accepted + this.outstanding < this.limit;
  }

  /** Enough records decoded: the sink will reach the limit with rows already pulled. */
  get exhausted(): boolean {
    return this.limit !== null && this.accepted >= this.limit;
  }

  /** Resolves at the next change that may open the gate. */
  changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** A row passed the cheap checks and goes to decoding. */
  candidate(): void {
    this.outstanding++;
  }

  /** Its decode ended: a record (counts towards the limit) or a reject (frees its place). */
  resolved(record: boolean): void {
    this.outstanding--;
    if (record) this.accepted++;
    for (const wake of this.waiters.splice(0)) wake();
  }
}
