import { voteFractionColumns } from './catalog.ts';

/** File names and headers of a synthetic data set (docs/interfaces.md §1). */
export const joinedCsvName = 'galaxy_df_final.csv';
export const gz2CsvName = 'gz2_hart16.csv';
export const mappingCsvName = 'gz2_filename_mapping.csv';
export const hazardsFileName = 'hazards.json';
export const imagesDirName = 'images';
/** Everything synth writes into --out, and so everything --force may remove. */
export const synthOutputs = [imagesDirName, joinedCsvName, gz2CsvName, mappingCsvName, hazardsFileName] as const;
/** The list above for messages: "images/, galaxy_df_final.csv, ..." */
export const synthOutputList = synthOutputs.map((name) => (name === imagesDirName ? `${name}/` : name)).join(', ');

export const joinedHeader = ['asset_id', 'dr7objid', 'gz2class', 'ra', 'dec'] as const;
export const gz2Header = [
  'dr7objid',
  'ra',
  'dec',
  'gz2_class',
  'total_votes',
  'total_classifications',
  ...voteFractionColumns,
] as const;
export const mappingHeader = ['objid', 'sample', 'asset_id'] as const;
