;; The core module of fetch.wasm (world `fetch` in worlds.wit): one HTTP GET through
;; wasi:http/outgoing-handler, written by hand in the canonical ABI (no bindings generator
;; is available). Results wider than one value come back in $RET, laid out as the
;; canonical ABI says; the offsets used below are noted where they are read.
(module
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.12" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (import "wasi:io/error@0.2.12" "[method]error.to-debug-string" (func $error_text (param i32 i32)))
  (import "wasi:io/error@0.2.12" "[resource-drop]error" (func $drop_error (param i32)))
  (import "wasi:io/streams@0.2.12" "[method]input-stream.blocking-read" (func $blocking_read (param i32 i64 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]input-stream" (func $drop_input_stream (param i32)))
  (import "wasi:http/types@0.2.12" "[constructor]fields" (func $new_fields (result i32)))
  (import "wasi:http/types@0.2.12" "[constructor]outgoing-request" (func $new_request (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-scheme"
    (func $set_scheme (param i32 i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-authority"
    (func $set_authority (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]outgoing-request.set-path-with-query"
    (func $set_path (param i32 i32 i32 i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]outgoing-request" (func $drop_request (param i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.subscribe" (func $subscribe (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]future-incoming-response.get" (func $get (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]future-incoming-response" (func $drop_future (param i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-response.status" (func $status (param i32) (result i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-response.consume" (func $consume (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-response" (func $drop_response (param i32)))
  (import "wasi:http/types@0.2.12" "[method]incoming-body.stream" (func $body_stream (param i32 i32)))
  (import "wasi:http/types@0.2.12" "[resource-drop]incoming-body" (func $drop_body (param i32)))
  (import "wasi:http/outgoing-handler@0.2.12" "handle" (func $handle (param i32 i32 i32 i32)))

  (memory (export "memory") 1)
  (global $RET i32 (i32.const 64))      ;; 8-aligned area for results returned through memory
  (global $RESULT i32 (i32.const 128))  ;; fetch's own result: tag @0, then status @4, body @8 or message @4
  (global $HEAP_BASE i32 (i32.const 4096))
  (global $heap (mut i32) (i32.const 4096))

  (data (i32.const 256) "the request's authority is not valid")           ;; 36
  (data (i32.const 320) "the request's path is not valid")                 ;; 31
  (data (i32.const 384) "the request's scheme is not valid")               ;; 33
  (data (i32.const 448) "outgoing-handler.handle failed: error-code case ") ;; 48
  (data (i32.const 512) "the response failed: error-code case ")           ;; 37
  (data (i32.const 576) "no response after its pollable was ready")        ;; 40
  (data (i32.const 640) "the response was already taken")                  ;; 30
  (data (i32.const 704) "the response body cannot be consumed")            ;; 36

  ;; A bump allocator: the host allocates fetch's arguments with it, the guest its result;
  ;; cabi_post_fetch frees everything at once.
  (func $cabi_realloc (export "cabi_realloc") (param $old i32) (param $old_size i32) (param $align i32)
      (param $size i32) (result i32)
    (local $ptr i32) (local $end i32)
    (local.set $ptr (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                             (i32.sub (i32.const 0) (local.get $align))))
    (local.set $end (i32.add (local.get $ptr) (local.get $size)))
    (if (i32.gt_u (local.get $end) (i32.shl (memory.size) (i32.const 16)))
      (then
        (if (i32.eq (memory.grow (i32.sub (i32.shr_u (i32.add (local.get $end) (i32.const 0xffff)) (i32.const 16))
                                          (memory.size)))
                    (i32.const -1))
          (then unreachable))))
    (global.set $heap (local.get $end))
    (if (local.get $old)
      (then (memory.copy (local.get $ptr) (local.get $old)
                         (select (local.get $old_size) (local.get $size)
                                 (i32.lt_u (local.get $old_size) (local.get $size))))))
    (local.get $ptr))

  (func (export "cabi_post_fetch") (param i32)
    (global.set $heap (global.get $HEAP_BASE)))

  (func $fail (param $msg i32) (param $len i32) (result i32)
    (i32.store8 (global.get $RESULT) (i32.const 1))
    (i32.store offset=4 (global.get $RESULT) (local.get $msg))
    (i32.store offset=8 (global.get $RESULT) (local.get $len))
    (global.get $RESULT))

  ;; Fails with the message followed by the number of the error-code case (so "case 6" is connection-refused).
  (func $fail_with_code (param $msg i32) (param $len i32) (param $code i32) (result i32)
    (local $text i32) (local $digits i32) (local $n i32) (local $at i32)
    (local.set $digits (i32.const 1))
    (local.set $n (local.get $code))
    (block $done (loop $count
      (br_if $done (i32.lt_u (local.get $n) (i32.const 10)))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (local.set $digits (i32.add (local.get $digits) (i32.const 1)))
      (br $count)))
    (local.set $text (call $cabi_realloc (i32.const 0) (i32.const 0) (i32.const 1)
                                         (i32.add (local.get $len) (local.get $digits))))
    (memory.copy (local.get $text) (local.get $msg) (local.get $len))
    (local.set $at (i32.add (local.get $text) (i32.add (local.get $len) (local.get $digits))))
    (local.set $n (local.get $code))
    (loop $write
      (local.set $at (i32.sub (local.get $at) (i32.const 1)))
      (i32.store8 (local.get $at) (i32.add (i32.const 48) (i32.rem_u (local.get $n) (i32.const 10))))
      (local.set $n (i32.div_u (local.get $n) (i32.const 10)))
      (br_if $write (local.get $n)))
    (call $fail (local.get $text) (i32.add (local.get $len) (local.get $digits))))

  (func (export "fetch") (param $authority i32) (param $authority_len i32) (param $path i32) (param $path_len i32)
      (result i32)
    (local $request i32) (local $future i32) (local $pollable i32) (local $response i32) (local $status i32)
    (local $body i32) (local $stream i32) (local $data i32) (local $data_len i32) (local $chunk_len i32)
    (local $grown i32) (local $error i32)
    (local.set $request (call $new_request (call $new_fields)))
    ;; option<scheme> some(HTTP): 1, case 0, no string
    (if (call $set_scheme (local.get $request) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 0))
      (then (call $drop_request (local.get $request))
            (return (call $fail (i32.const 384) (i32.const 33)))))
    (if (call $set_authority (local.get $request) (i32.const 1) (local.get $authority) (local.get $authority_len))
      (then (call $drop_request (local.get $request))
            (return (call $fail (i32.const 256) (i32.const 36)))))
    (if (call $set_path (local.get $request) (i32.const 1) (local.get $path) (local.get $path_len))
      (then (call $drop_request (local.get $request))
            (return (call $fail (i32.const 320) (i32.const 31)))))

    ;; result<future-incoming-response, error-code>: tag @0; handle or error-code (its tag) @8.
    ;; handle takes the request, also when it fails.
    (call $handle (local.get $request) (i32.const 0) (i32.const 0) (global.get $RET))
    (if (i32.load8_u (global.get $RET))
      (then (return (call $fail_with_code (i32.const 448) (i32.const 48)
                                          (i32.load8_u offset=8 (global.get $RET))))))
    (local.set $future (i32.load offset=8 (global.get $RET)))

    (local.set $pollable (call $subscribe (local.get $future)))
    (call $block (local.get $pollable))
    (call $drop_pollable (local.get $pollable))
    ;; option<result<result<incoming-response, error-code>>>: tags @0, @8, @16; handle or error-code @24.
    (call $get (local.get $future) (global.get $RET))
    (call $drop_future (local.get $future))
    (if (i32.eqz (i32.load8_u (global.get $RET)))
      (then (return (call $fail (i32.const 576) (i32.const 40)))))
    (if (i32.load8_u offset=8 (global.get $RET))
      (then (return (call $fail (i32.const 640) (i32.const 30)))))
    (if (i32.load8_u offset=16 (global.get $RET))
      (then (return (call $fail_with_code (i32.const 512) (i32.const 37)
                                          (i32.load8_u offset=24 (global.get $RET))))))
    (local.set $response (i32.load offset=24 (global.get $RET)))
    (local.set $status (call $status (local.get $response)))

    ;; result<incoming-body> and result<input-stream>: tag @0, handle @4.
    (call $consume (local.get $response) (global.get $RET))
    (if (i32.load8_u (global.get $RET))
      (then (call $drop_response (local.get $response))
            (return (call $fail (i32.const 704) (i32.const 36)))))
    (local.set $body (i32.load offset=4 (global.get $RET)))
    (call $body_stream (local.get $body) (global.get $RET))
    (if (i32.load8_u (global.get $RET))
      (then (call $drop_body (local.get $body))
            (call $drop_response (local.get $response))
            (return (call $fail (i32.const 704) (i32.const 36)))))
    (local.set $stream (i32.load offset=4 (global.get $RET)))

    ;; result<list<u8>, stream-error>: tag @0; list @4 (pointer, length) or stream-error's tag @4,
    ;; its io error @8. The stream ends with stream-error `closed` (case 1).
    (block $closed (loop $read
      (call $blocking_read (local.get $stream) (i64.const 65536) (global.get $RET))
      (if (i32.load8_u (global.get $RET))
        (then
          (br_if $closed (i32.eq (i32.load8_u offset=4 (global.get $RET)) (i32.const 1)))
          (local.set $error (i32.load offset=8 (global.get $RET)))
          (call $drop_input_stream (local.get $stream))
          (call $drop_body (local.get $body))
          (call $drop_response (local.get $response))
          (call $error_text (local.get $error) (global.get $RET))
          (call $drop_error (local.get $error))
          (return (call $fail (i32.load (global.get $RET)) (i32.load offset=4 (global.get $RET))))))
      (local.set $chunk_len (i32.load offset=8 (global.get $RET)))
      (local.set $grown (call $cabi_realloc (local.get $data) (local.get $data_len) (i32.const 1)
                                            (i32.add (local.get $data_len) (local.get $chunk_len))))
      (memory.copy (i32.add (local.get $grown) (local.get $data_len)) (i32.load offset=4 (global.get $RET))
                   (local.get $chunk_len))
      (local.set $data (local.get $grown))
      (local.set $data_len (i32.add (local.get $data_len) (local.get $chunk_len)))
      (br $read)))
    (call $drop_input_stream (local.get $stream))
    (call $drop_body (local.get $body))
    (call $drop_response (local.get $response))

    (i32.store8 (global.get $RESULT) (i32.const 0))
    (i32.store16 offset=4 (global.get $RESULT) (local.get $status))
    (i32.store offset=8 (global.get $RESULT) (local.get $data))
    (i32.store offset=12 (global.get $RESULT) (local.get $data_len))
    (global.get $RESULT)))
