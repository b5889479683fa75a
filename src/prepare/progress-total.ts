/**
 * The total of prepare's progress bar, in CSV rows. Without --limit it is the CSV's row count.
 * With --limit it is the rows still to pull for the records still wanted (one row per record,
 * the best guess before rejects are seen) after those already pulled, and never more than the
 * CSV has: min(limit, rows) at the start, exactly the rows pulled once the limit is reached. A
 * resumed run pulls its committed rows again (replayed, not decoded), so those count as well.
 */
export function prepareProgressTotal(
  rows: number | null,
  limit: number | null,
  progress: { pulled: number; accepted: number; committedRow: number },
): number | null {
  if (limit === null) return rows;
  const { pulled, accepted, committedRow } = progress;
  const estimate = pulled + Math.max(0, committedRow - pulled) + Math.max(0, limit - accepted);
  return rows === null ? estimate : Math.min(rows, estimate);
}
