import type { ClassRule } from '../config/schema.ts';

/** The config's class rules: the first rule whose regular expression matches the label wins. */
export class LabelRules {
  private readonly rules: { name: string; pattern: RegExp }[];

  constructor(classes: ClassRule[]) {
    this.rules = classes.map((c) => ({ name: c.name, pattern: new RegExp(c.match) }));
  }

  get names(): string[] {
    return this.rules.map((r) => r.name);
  }

  /** Class index, or the reason the label gives no class. */
  classify(label: string | undefined): { index: number } | { reason: 'unlabelled' | 'unknown-label'; detail: string } {
    const value = (label ?? '').trim();
    if (value === '') return { reason: 'unlabelled', detail: 'the label is empty' };
    const index = this.rules.findIndex((r) => r.pattern.test(value));
    if (index < 0)
      return {
        reason: 'unknown-label',
        detail: `label ${JSON.stringify(value)} matches no class rule (${this.rules.map((r) => `${r.name}: /${r.pattern.source}/`).join(', ')})`,
      };
    return { index };
  }
}
