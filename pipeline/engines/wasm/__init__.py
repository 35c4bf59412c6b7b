"""The WASM side: ABI constants, the wasmtime host, the module registry and the build."""
