export { applyRedirect, removeRedirect, redirectStatus, PrerequisiteError, type ApplyOptions, type RedirectStatus } from './agent';
export { withDefaults, validateRedirectConfig, parseCidr, type RedirectMode } from './config';
export { renderTable, renderApplyTransaction, COUNTERS } from './nft-ruleset';
export { missingPrerequisites } from './preflight';
export type { InstalledState } from './state';
