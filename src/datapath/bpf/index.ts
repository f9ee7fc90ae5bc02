export { attach, detach, status, counters, countersFrom } from './datapath';
export type { AttachOptions, AttachResult, DatapathStatus, DatapathTarget, DetachResult, SocketEntry, ProgramInfo } from './datapath';
export { preflight, missingRequirements, PreflightError, defaultObjectPaths } from './preflight';
export type { Requirement, ObjectPaths } from './preflight';
export { COUNTER_NAMES, DEFAULT_PIN_DIR, DEFAULT_BULK_STREAK, DEFAULT_BULK_SMALL_MAX, DEFAULT_BULK_LARGE_MIN, MODE_VALUES } from './abi';
export type { Counters, SkMsgMode } from './abi';
export { cgroup2Root, isCgroup2 } from './cgroup';
