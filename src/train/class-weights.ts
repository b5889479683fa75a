/**
 * "balanced" class weights (scikit-learn's rule): n_samples / (n_classes * n_c), so every class
 * contributes the same total weight to the loss. A class absent from training gets weight 1.
 */
export function balancedClassWeights(trainClassCounts: number[]): Record<number, number> {
  const total = trainClassCounts.reduce((a, b) => a + b, 0);
  const present = trainClassCounts.filter((n) => n > 0).length;
  const weights: Record<number, number> = {};
  trainClassCounts.forEach((n, c) => {
    weights[c] = n > 0 ? total / (present * n) : 1;
  });
  return weights;
}
