// Imported before @grpc/grpc-js-xds: it reads this at load, and only then registers its RBAC filter (gRFC A41).
process.env['GRPC_XDS_EXPERIMENTAL_RBAC'] = 'true';
