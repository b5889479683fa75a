import * as tf from '@tensorflow/tfjs';

/**
 * Early stopping that also restores the best weights (tfjs's EarlyStopping throws on
 * `restoreBestWeights`). Semantics follow Keras: an epoch improves when the monitored value is
 * strictly better than the best so far; training stops once `patience` epochs in a row did not
 * improve. The best weights are copied at each improvement (the old copy disposed), so the
 * number of live tensors is the same after every epoch.
 */
export type Monitor = 'val_loss' | 'val_accuracy' | 'loss' | 'accuracy';

export class EarlyStopping {
  readonly monitor: Monitor;
  readonly patience: number | null;
  readonly keepBest: boolean;
  best = Number.NaN;
  bestEpoch = -1;
  private wait = 0;
  private bestWeights: tf.Tensor[] | null = null;

  constructor(options: { monitor: Monitor; patience: number | null; restoreBestWeights: boolean }) {
    this.monitor = options.monitor;
    this.patience = options.patience;
    this.keepBest = options.restoreBestWeights;
  }

  private improves(value: number): boolean {
    if (!Number.isFinite(value)) return false;
    if (Number.isNaN(this.best)) return true;
    return this.monitor.endsWith('loss') ? value < this.best : value > this.best;
  }

  /** Records an epoch's value; returns true when training should stop. */
  update(epoch: number, value: number, model: tf.LayersModel): boolean {
    if (this.improves(value)) {
      this.best = value;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.keepBest) {
        const copies = model.getWeights().map((w) => tf.clone(w));
        if (this.bestWeights) tf.dispose(this.bestWeights);
        this.bestWeights = copies;
      }
      return false;
    }
    this.wait++;
    return this.patience !== null && this.wait >= this.patience;
  }

  /** Puts the best weights back (if kept and not already current) and frees the copy. */
  restore(model: tf.LayersModel, lastEpoch: number): boolean {
    const restored = this.bestWeights !== null && this.bestEpoch !== lastEpoch;
    if (restored) model.setWeights(this.bestWeights!);
    this.dispose();
    return restored;
  }

  dispose(): void {
    if (this.bestWeights) tf.dispose(this.bestWeights);
    this.bestWeights = null;
  }
}
