//! Turning an `ObjectSpec` into live kernel objects (`LoadedObject`):
//! map creation and pinning, relocation, BTF upload, tail calls, map-in-map.
