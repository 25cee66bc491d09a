// The engine's pure types (limits, outputs, resolvers, cancellation, header probe) live in
// ImagingCore, which does not link libvips; users of Imaging see them through this module.
@_exported import ImagingCore
