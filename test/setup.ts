// Loaded by mocha before any test file (see .mocharc.json): gRPC's xDS package reads this
// when it is first required, and several test files load it.
process.env.GRPC_XDS_EXPERIMENTAL_RBAC = 'true';
