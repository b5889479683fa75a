/**
 * A small Gaussian-process regressor for the Bayesian oracle: Matern 5/2 kernel on the unit cube,
 * fixed length scale, targets standardised, exact solve by Cholesky (a search has at most a few
 * hundred trials, so O(n^3) is nothing next to one epoch of training).
 */

export interface GaussianProcessOptions {
  /** Kernel length scale in unit-cube coordinates (sklearn's default starting value is 1). */
  lengthScale?: number;
  /** Observation noise added to the diagonal (keras-tuner's `alpha`). */
  noise?: number;
}

function matern52(a: readonly number[], b: readonly number[], lengthScale: number): number {
  let squared = 0;
  for (let i = 0; i < a.length; i++) squared += (a[i] - b[i]) ** 2;
  const r = Math.sqrt(5 * squared) / lengthScale;
  return (1 + r + (r * r) / 3) * Math.exp(-r);
}

/** Lower-triangular L with L L^T = A (A symmetric positive definite), row-major. */
function cholesky(a: number[][]): number[][] {
  const n = a.length;
  const l = a.map(() => new Array<number>(n).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let sum = a[i][j];
      for (let k = 0; k < j; k++) sum -= l[i][k] * l[j][k];
      l[i][j] = i === j ? Math.sqrt(Math.max(sum, 1e-12)) : sum / l[j][j];
    }
  }
  return l;
}

/** Solves L x = b (forward substitution). */
function solveLower(l: number[][], b: readonly number[]): number[] {
  const x = new Array<number>(b.length).fill(0);
  for (let i = 0; i < b.length; i++) {
    let sum = b[i];
    for (let k = 0; k < i; k++) sum -= l[i][k] * x[k];
    x[i] = sum / l[i][i];
  }
  return x;
}

/** Solves L^T x = b (back substitution). */
function solveUpper(l: number[][], b: readonly number[]): number[] {
  const n = b.length;
  const x = new Array<number>(n).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    let sum = b[i];
    for (let k = i + 1; k < n; k++) sum -= l[k][i] * x[k];
    x[i] = sum / l[i][i];
  }
  return x;
}

export class GaussianProcess {
  private readonly lengthScale: number;
  private readonly chol: number[][];
  private readonly weights: number[];
  private readonly yMean: number;
  private readonly yStd: number;

  constructor(
    private readonly points: readonly (readonly number[])[],
    targets: readonly number[],
    options: GaussianProcessOptions = {},
  ) {
    if (points.length === 0 || points.length !== targets.length)
      throw new Error('a Gaussian process needs as many targets as points, at least one');
    this.lengthScale = options.lengthScale ?? 1;
    const noise = options.noise ?? 1e-4;
    this.yMean = targets.reduce((s, y) => s + y, 0) / targets.length;
    const variance = targets.reduce((s, y) => s + (y - this.yMean) ** 2, 0) / targets.length;
    this.yStd = variance > 0 ? Math.sqrt(variance) : 1;
    const y = targets.map((t) => (t - this.yMean) / this.yStd);
    const k = points.map((a, i) => points.map((b, j) => matern52(a, b, this.lengthScale) + (i === j ? noise : 0)));
    this.chol = cholesky(k);
    this.weights = solveUpper(this.chol, solveLower(this.chol, y));
  }

  /** Posterior mean and standard deviation at `x`, in the targets' units. */
  predict(x: readonly number[]): { mean: number; std: number } {
    const kx = this.points.map((p) => matern52(p, x, this.lengthScale));
    const mean = kx.reduce((s, v, i) => s + v * this.weights[i], 0);
    const v = solveLower(this.chol, kx);
    const variance = Math.max(0, 1 - v.reduce((s, e) => s + e * e, 0));
    return { mean: this.yMean + this.yStd * mean, std: this.yStd * Math.sqrt(variance) };
  }
}
