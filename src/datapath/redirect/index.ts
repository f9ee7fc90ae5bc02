export { applyRedirect, removeRedirect, redirectStatus, PrerequisiteError, type ApplyOptions, type RedirectStatus } from './agent';
export { withDefaults, validateRedirectConfig, type CaptureMode } from './validate';
export { parseCidr } from '../../net/cidr';
export { renderTable, renderApplyTransaction, COUNTERS } from './nft-ruleset';
export { missingPrerequisites } from './preflight';
export type { InstalledState } from './state';
