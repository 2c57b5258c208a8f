;; The core module of sockets.wasm (world `sockets` in worlds.wit): a TCP exchange and a name
;; lookup through wasi:sockets, written by hand in the canonical ABI as fetch.wat is. Results
;; wider than one value come back in $RET; the offsets used below are noted where they are read.
(module
  (import "wasi:io/poll@0.2.12" "[method]pollable.block" (func $block (param i32)))
  (import "wasi:io/poll@0.2.12" "[resource-drop]pollable" (func $drop_pollable (param i32)))
  (import "wasi:io/error@0.2.12" "[method]error.to-debug-string" (func $error_text (param i32 i32)))
  (import "wasi:io/error@0.2.12" "[resource-drop]error" (func $drop_error (param i32)))
  (import "wasi:io/streams@0.2.12" "[method]input-stream.blocking-read" (func $blocking_read (param i32 i64 i32)))
  (import "wasi:io/streams@0.2.12" "[method]output-stream.blocking-write-and-flush"
    (func $blocking_write (param i32 i32 i32 i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]input-stream" (func $drop_input_stream (param i32)))
  (import "wasi:io/streams@0.2.12" "[resource-drop]output-stream" (func $drop_output_stream (param i32)))
  (import "wasi:sockets/network@0.2.12" "[resource-drop]network" (func $drop_network (param i32)))
  (import "wasi:sockets/instance-network@0.2.12" "instance-network" (func $instance_network (result i32)))
  (import "wasi:sockets/tcp-create-socket@0.2.12" "create-tcp-socket" (func $create_tcp_socket (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.12" "[method]tcp-socket.start-connect"
    (func $start_connect (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)))
  (import "wasi:sockets/tcp@0.2.12" "[method]tcp-socket.finish-connect" (func $finish_connect (param i32 i32)))
  (import "wasi:sockets/tcp@0.2.12" "[method]tcp-socket.subscribe" (func $socket_subscribe (param i32) (result i32)))
  (import "wasi:sockets/tcp@0.2.12" "[resource-drop]tcp-socket" (func $drop_socket (param i32)))
  (import "wasi:sockets/ip-name-lookup@0.2.12" "resolve-addresses" (func $resolve_addresses (param i32 i32 i32 i32)))
  (import "wasi:sockets/ip-name-lookup@0.2.12" "[method]resolve-address-stream.resolve-next-address"
    (func $resolve_next (param i32 i32)))
  (import "wasi:sockets/ip-name-lookup@0.2.12" "[method]resolve-address-stream.subscribe"
    (func $resolve_subscribe (param i32) (result i32)))
  (import "wasi:sockets/ip-name-lookup@0.2.12" "[resource-drop]resolve-address-stream"
    (func $drop_resolve_stream (param i32)))

  (memory (export "memory") 1)
  (global $RET i32 (i32.const 64))      ;; 8-aligned area for results returned through memory
  (global $RESULT i32 (i32.const 128))  ;; the export's own result
  (global $HEAP_BASE i32 (i32.const 4096))
  (global $heap (mut i32) (i32.const 4096))
  ;; wasi:sockets error-code `would-block`: the operation is still under way.
  (global $WOULD_BLOCK i32 (i32.const 8))
  ;; The size of an ip-address (tag, then four u8 or eight u16 from offset 2).
  (global $IP_ADDRESS_SIZE i32 (i32.const 18))

  (data (i32.const 256) "the connection closed before the request was sent") ;; 50

  ;; A bump allocator: the host allocates the arguments with it, the guest its results;
  ;; each export's cabi_post_* frees everything at once.
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

  (func (export "cabi_post_exchange") (param i32)
    (global.set $heap (global.get $HEAP_BASE)))

  (func (export "cabi_post_resolve") (param i32)
    (global.set $heap (global.get $HEAP_BASE)))

  ;; exchange's result<list<u8>, failure>: tag @0; list @4, or failure's tag @4 and its error-code or string @8.
  (func $fail_code (param $step i32) (param $code i32) (result i32)
    (i32.store8 (global.get $RESULT) (i32.const 1))
    (i32.store8 offset=4 (global.get $RESULT) (local.get $step))
    (i32.store8 offset=8 (global.get $RESULT) (local.get $code))
    (global.get $RESULT))

  (func $fail_text (param $text i32) (param $len i32) (result i32)
    (i32.store8 (global.get $RESULT) (i32.const 1))
    (i32.store8 offset=4 (global.get $RESULT) (i32.const 2))  ;; failure.io
    (i32.store offset=8 (global.get $RESULT) (local.get $text))
    (i32.store offset=12 (global.get $RESULT) (local.get $len))
    (global.get $RESULT))

  ;; Fails with the text of a stream-error left in $RET at @4 (tag) and @8 (its io error).
  (func $fail_stream (param $closed_text i32) (param $closed_len i32) (result i32)
    (local $error i32)
    (if (i32.eq (i32.load8_u offset=4 (global.get $RET)) (i32.const 1))
      (then (return (call $fail_text (local.get $closed_text) (local.get $closed_len)))))
    (local.set $error (i32.load offset=8 (global.get $RET)))
    (call $error_text (local.get $error) (global.get $RET))
    (call $drop_error (local.get $error))
    (call $fail_text (i32.load (global.get $RET)) (i32.load offset=4 (global.get $RET))))

  (func (export "exchange") (param $port i32) (param $request i32) (param $request_len i32) (result i32)
    (local $network i32) (local $socket i32) (local $pollable i32) (local $input i32) (local $output i32)
    (local $sent i32) (local $chunk_len i32) (local $data i32) (local $data_len i32) (local $grown i32)
    (local $result i32)
    (local.set $network (call $instance_network))
    ;; result<tcp-socket, error-code>: tag @0, handle or error-code @4. Address family 0 is ipv4.
    (call $create_tcp_socket (i32.const 0) (global.get $RET))
    (if (i32.load8_u (global.get $RET))
      (then (call $drop_network (local.get $network))
            (return (call $fail_code (i32.const 0) (i32.load8_u offset=4 (global.get $RET))))))
    (local.set $socket (i32.load offset=4 (global.get $RET)))

    ;; ip-socket-address ipv4 (case 0) {port, 127.0.0.1}, padded to the ipv6 case's eleven values;
    ;; result<_, error-code>: tag @0, error-code @1.
    (call $start_connect (local.get $socket) (local.get $network)
      (i32.const 0) (local.get $port) (i32.const 127) (i32.const 0) (i32.const 0) (i32.const 1)
      (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0) (i32.const 0)
      (global.get $RET))
    (if (i32.load8_u (global.get $RET))
      (then (call $drop_socket (local.get $socket))
            (call $drop_network (local.get $network))
            (return (call $fail_code (i32.const 1) (i32.load8_u offset=1 (global.get $RET))))))
    ;; result<tuple<input-stream, output-stream>, error-code>: tag @0; streams @4 and @8, or error-code @4.
    (local.set $pollable (call $socket_subscribe (local.get $socket)))
    (block $connected (loop $wait
      (call $block (local.get $pollable))
      (call $finish_connect (local.get $socket) (global.get $RET))
      (br_if $connected (i32.eqz (i32.load8_u (global.get $RET))))
      (br_if $wait (i32.eq (i32.load8_u offset=4 (global.get $RET)) (global.get $WOULD_BLOCK)))
      (call $drop_pollable (local.get $pollable))
      (call $drop_socket (local.get $socket))
      (call $drop_network (local.get $network))
      (return (call $fail_code (i32.const 1) (i32.load8_u offset=4 (global.get $RET))))))
    (call $drop_pollable (local.get $pollable))
    (local.set $input (i32.load offset=4 (global.get $RET)))
    (local.set $output (i32.load offset=8 (global.get $RET)))

    ;; blocking-write-and-flush takes at most 4096 bytes a call. result<_, stream-error>: tag @0,
    ;; stream-error's tag @4 (1: closed), its io error @8.
    (block $failed
      (block $sent_all (loop $write
        (br_if $sent_all (i32.ge_u (local.get $sent) (local.get $request_len)))
        (local.set $chunk_len (i32.sub (local.get $request_len) (local.get $sent)))
        (if (i32.gt_u (local.get $chunk_len) (i32.const 4096)) (then (local.set $chunk_len (i32.const 4096))))
        (call $blocking_write (local.get $output) (i32.add (local.get $request) (local.get $sent))
                              (local.get $chunk_len) (global.get $RET))
        (if (i32.load8_u (global.get $RET))
          (then (local.set $result (call $fail_stream (i32.const 256) (i32.const 50)))
                (br $failed)))
        (local.set $sent (i32.add (local.get $sent) (local.get $chunk_len)))
        (br $write)))

      ;; result<list<u8>, stream-error>: tag @0; list @4 (pointer, length) or the stream-error as above.
      (block $closed (loop $read
        (call $blocking_read (local.get $input) (i64.const 65536) (global.get $RET))
        (if (i32.load8_u (global.get $RET))
          (then
            (br_if $closed (i32.eq (i32.load8_u offset=4 (global.get $RET)) (i32.const 1)))
            (local.set $result (call $fail_stream (i32.const 0) (i32.const 0)))
            (br $failed)))
        (local.set $chunk_len (i32.load offset=8 (global.get $RET)))
        (local.set $grown (call $cabi_realloc (local.get $data) (local.get $data_len) (i32.const 1)
                                              (i32.add (local.get $data_len) (local.get $chunk_len))))
        (memory.copy (i32.add (local.get $grown) (local.get $data_len)) (i32.load offset=4 (global.get $RET))
                     (local.get $chunk_len))
        (local.set $data (local.get $grown))
        (local.set $data_len (i32.add (local.get $data_len) (local.get $chunk_len)))
        (br $read)))
      (local.set $result (global.get $RESULT))
      (i32.store8 (global.get $RESULT) (i32.const 0))
      (i32.store offset=4 (global.get $RESULT) (local.get $data))
      (i32.store offset=8 (global.get $RESULT) (local.get $data_len)))
    (call $drop_input_stream (local.get $input))
    (call $drop_output_stream (local.get $output))
    (call $drop_socket (local.get $socket))
    (call $drop_network (local.get $network))
    (local.get $result))

  ;; resolve's result<list<ip-address>, error-code>: tag @0; list @4, or error-code @4.
  (func (export "resolve") (param $name i32) (param $name_len i32) (result i32)
    (local $network i32) (local $stream i32) (local $pollable i32) (local $list i32) (local $count i32)
    (local $grown i32) (local $code i32)
    (local.set $network (call $instance_network))
    ;; result<resolve-address-stream, error-code>: tag @0, handle or error-code @4.
    (call $resolve_addresses (local.get $network) (local.get $name) (local.get $name_len) (global.get $RET))
    (if (i32.load8_u (global.get $RET))
      (then (local.set $code (i32.load8_u offset=4 (global.get $RET)))
            (call $drop_network (local.get $network))
            (i32.store8 (global.get $RESULT) (i32.const 1))
            (i32.store8 offset=4 (global.get $RESULT) (local.get $code))
            (return (global.get $RESULT))))
    (local.set $stream (i32.load offset=4 (global.get $RET)))
    (local.set $pollable (call $resolve_subscribe (local.get $stream)))
    ;; result<option<ip-address>, error-code>: tag @0; option's tag @2 and the ip-address @4, or error-code @2.
    (block $done (loop $next
      (call $resolve_next (local.get $stream) (global.get $RET))
      (if (i32.load8_u (global.get $RET))
        (then
          (local.set $code (i32.load8_u offset=2 (global.get $RET)))
          (if (i32.eq (local.get $code) (global.get $WOULD_BLOCK))
            (then (call $block (local.get $pollable))
                  (br $next)))
          (call $drop_pollable (local.get $pollable))
          (call $drop_resolve_stream (local.get $stream))
          (call $drop_network (local.get $network))
          (i32.store8 (global.get $RESULT) (i32.const 1))
          (i32.store8 offset=4 (global.get $RESULT) (local.get $code))
          (return (global.get $RESULT))))
      (br_if $done (i32.eqz (i32.load8_u offset=2 (global.get $RET))))
      (local.set $grown (call $cabi_realloc (local.get $list) (i32.mul (local.get $count) (global.get $IP_ADDRESS_SIZE))
                                            (i32.const 2)
                                            (i32.mul (i32.add (local.get $count) (i32.const 1))
                                                     (global.get $IP_ADDRESS_SIZE))))
      (memory.copy (i32.add (local.get $grown) (i32.mul (local.get $count) (global.get $IP_ADDRESS_SIZE)))
                   (i32.add (global.get $RET) (i32.const 4)) (global.get $IP_ADDRESS_SIZE))
      (local.set $list (local.get $grown))
      (local.set $count (i32.add (local.get $count) (i32.const 1)))
      (br $next)))
    (call $drop_pollable (local.get $pollable))
    (call $drop_resolve_stream (local.get $stream))
    (call $drop_network (local.get $network))
    (i32.store8 (global.get $RESULT) (i32.const 0))
    (i32.store offset=4 (global.get $RESULT) (local.get $list))
    (i32.store offset=8 (global.get $RESULT) (local.get $count))
    (global.get $RESULT)))
