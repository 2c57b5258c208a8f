;; 64-bit FNV-1a over a buffer in linear memory: the kernel that examples/parallel runs four ways.
;; hash(address, length, rounds) hashes [address, address + length) `rounds` times over, each pass
;; continuing from the last hash (so that a chunk's work can be made as long as wanted).
(module
  (memory (export "memory") 2)  ;; 128 KiB: room for a 64 KiB chunk at address 0
  (func (export "hash") (param $address i32) (param $length i32) (param $rounds i32) (result i64)
    (local $hash i64) (local $i i32)
    (local.set $hash (i64.const 0xcbf29ce484222325))
    (block $done
      (loop $round
        (br_if $done (i32.eqz (local.get $rounds)))
        (local.set $i (i32.const 0))
        (block $end_of_pass
          (loop $byte
            (br_if $end_of_pass (i32.ge_u (local.get $i) (local.get $length)))
            (local.set $hash
              (i64.mul
                (i64.xor (local.get $hash)
                         (i64.load8_u (i32.add (local.get $address) (local.get $i))))
                (i64.const 0x100000001b3)))
            (local.set $i (i32.add (local.get $i) (i32.const 1)))
            (br $byte)))
        (local.set $rounds (i32.sub (local.get $rounds) (i32.const 1)))
        (br $round)))
    (local.get $hash)))
