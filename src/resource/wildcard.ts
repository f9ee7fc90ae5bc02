/** The resource name that subscribes to every resource of a type (xDS protocol, "wildcard"). */
export const WILDCARD = '*';
