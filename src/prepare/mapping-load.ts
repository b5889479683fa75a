import type { LoadedConfig } from '../config/load.ts';
import { loadGz2Mapping, type Gz2Mapping } from '../ingest/gz2-mapping.ts';
import type { MemoryPlan } from '../memory/plan.ts';
import { tableFullError } from '../memory/refusals.ts';

/** The gz2 layout's object -> image mapping within the plan's tables; null for the joined layout. */
export async function loadMappingFor(config: LoadedConfig, plan: MemoryPlan): Promise<Gz2Mapping | null> {
  const data = config.data;
  const mappingCsv = data.mappingCsv;
  const mappingPlan = plan.prepare.mapping;
  if (data.layout !== 'gz2' || !mappingCsv || !mappingPlan) return null;
  return loadGz2Mapping(
    mappingCsv,
    data.mappingObjectColumn,
    data.mappingImageColumn,
    data.maxRowBytes,
    mappingPlan,
    (what) => tableFullError(plan, mappingCsv, what, what === 'object ids' ? mappingPlan.objects : mappingPlan.images),
  );
}
