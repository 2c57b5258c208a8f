;; The core module of shapes.wasm, implementing shapes.wit by hand in the canonical ABI
;; (`wasm-tools component embed --dummy shapes.wit -t` prints the signatures it expects).
;; Import and export names say where each function belongs: "cm32p2|<interface>" for an
;; interface's, "cm32p2||<name>" for the world's own. The module exports no cm32p2_realloc,
;; since the host never hands it a string or a list to allocate room for, and none of the
;; optional *_post functions, since a result leaves nothing to free.
(module
  (import "cm32p2|example:shapes/canvas@0.1" "circle" (func $canvas_circle (param f64)))
  (import "cm32p2|example:shapes/canvas@0.1" "rectangle" (func $canvas_rectangle (param f64 f64)))

  ;; Strings and results that do not fit in one core value cross the boundary through this
  ;; memory, which the component exports to the host.
  (memory (export "cm32p2_memory") 1)
  ;; Bytes 0-15: the return area, where an export writes a result that is more than one core
  ;; value and returns its address. One area serves every export: the host reads a result
  ;; before it can make the next call. The error messages follow it (43 and 44 bytes long).
  (data (i32.const 16) "a circle's radius must be a positive number")
  (data (i32.const 64) "a rectangle's sides must be positive numbers")

  (global $drawn (mut i32) (i32.const 0))

  ;; A variant flattens to its case index and then the union of its cases' payloads:
  ;; circle(f64) uses $a, rectangle(size) $a and $b (the record's fields in order).
  (func (export "cm32p2|example:shapes/geometry@0.1|area")
        (param $case i32) (param $a f64) (param $b f64) (result f64)
    (if (result f64) (i32.eqz (local.get $case))
      (then (f64.mul (f64.const 3.141592653589793) (f64.mul (local.get $a) (local.get $a))))
      (else (f64.mul (local.get $a) (local.get $b)))))

  ;; A record result is two f64s, more than one core value: it is stored at the return area
  ;; with the record's layout (fields in order, each 8 bytes, aligned to 8) and its address
  ;; returned.
  (func (export "cm32p2|example:shapes/geometry@0.1|scale")
        (param $width f64) (param $height f64) (param $factor f64) (result i32)
    (f64.store (i32.const 0) (f64.mul (local.get $width) (local.get $factor)))
    (f64.store (i32.const 8) (f64.mul (local.get $height) (local.get $factor)))
    (i32.const 0))

  ;; result<_, string> is laid out as a case byte (0 ok, 1 err) and, aligned to 4, the error
  ;; string's address and length in bytes (UTF-8). `f64.gt` is false for NaN, so NaN is refused.
  (func (export "cm32p2|example:shapes/geometry@0.1|draw")
        (param $case i32) (param $a f64) (param $b f64) (result i32)
    (if (i32.eqz (local.get $case))
      (then
        (if (i32.eqz (f64.gt (local.get $a) (f64.const 0)))
          (then (return (call $error (i32.const 16) (i32.const 43)))))
        (call $canvas_circle (local.get $a)))
      (else
        (if (i32.eqz (i32.and (f64.gt (local.get $a) (f64.const 0)) (f64.gt (local.get $b) (f64.const 0))))
          (then (return (call $error (i32.const 64) (i32.const 44)))))
        (call $canvas_rectangle (local.get $a) (local.get $b))))
    (global.set $drawn (i32.add (global.get $drawn) (i32.const 1)))
    (i32.store8 (i32.const 0) (i32.const 0))
    (i32.const 0))

  (func $error (param $message i32) (param $length i32) (result i32)
    (i32.store8 (i32.const 0) (i32.const 1))        ;; err
    (i32.store (i32.const 4) (local.get $message))  ;; the string: UTF-8 in this module's memory
    (i32.store (i32.const 8) (local.get $length))
    (i32.const 0))                                  ;; where the result is

  (func (export "cm32p2||drawn") (result i32)
    (global.get $drawn)))
