;; Imports `bar` and the memory of module `one` (one.wasm on sys.path), wasm to wasm.
(module
  (import "one" "bar" (func $bar (result i32)))
  (import "one" "memory" (memory 0))
  (func (export "ask") (result i32)
    (i32.load (call $bar))))
