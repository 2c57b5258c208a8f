;; The core module of maps.wasm (maps.wit): written by hand. A map<K, V> lowers as
;; list<tuple<K, V>>: (pointer, count) of entries laid out as tuples. map<string, u32> entries
;; are 12 bytes (string pointer, string length, value); map<u32, list<string>> entries are 12
;; bytes too (key, list pointer, list length), each string of a list 8 bytes (pointer, length).
;; A map result is returned through the return area at address 8: (pointer, count).
(module
  (import "cm32p2|test:maps/host@0.1" "tally" (func $tally (param i32 i32 i32)))
  (import "cm32p2|test:maps/host@0.1" "regroup" (func $regroup (param i32 i32 i32)))
  (memory (export "cm32p2_memory") 1)
  (global $heap (mut i32) (i32.const 1024))
  ;; The text of the guest's own maps: "one" 64, "two" 67, "deux" 70, "a" 74, "b" 75.
  (data (i32.const 64) "onetwodeuxab")
  ;; ["one"] at 80, ["two", "deux"] at 88.
  (data (i32.const 80) "\40\00\00\00\03\00\00\00\43\00\00\00\03\00\00\00\46\00\00\00\04\00\00\00")
  ;; groups(): {1: ["one"], 2: ["two", "deux"]}, 2 entries at 104.
  (data (i32.const 104) "\01\00\00\00\50\00\00\00\01\00\00\00\02\00\00\00\58\00\00\00\02\00\00\00")
  ;; duplicates(): (a, 1), (b, 2), (a, 3), 3 entries at 128.
  (data (i32.const 128) "\4a\00\00\00\01\00\00\00\01\00\00\00\4b\00\00\00\01\00\00\00\02\00\00\00\4a\00\00\00\01\00\00\00\03\00\00\00")
  (func $return_map (param $entries i32) (param $count i32) (result i32)
    (i32.store (i32.const 8) (local.get $entries))
    (i32.store (i32.const 12) (local.get $count))
    (i32.const 8))
  (func (export "cm32p2|test:maps/api@0.1|echo-counts") (param i32 i32) (result i32)
    (call $return_map (local.get 0) (local.get 1)))
  (func (export "cm32p2|test:maps/api@0.1|echo-groups") (param i32 i32) (result i32)
    (call $return_map (local.get 0) (local.get 1)))
  (func (export "cm32p2|test:maps/api@0.1|count-entries") (param i32 i32) (result i32)
    (local.get 1))
  (func (export "cm32p2|test:maps/api@0.1|sum-values") (param $entries i32) (param $count i32) (result i32)
    (local $sum i32)
    (block $done
      (loop $next
        (br_if $done (i32.eqz (local.get $count)))
        (local.set $sum (i32.add (local.get $sum) (i32.load offset=8 (local.get $entries))))
        (local.set $entries (i32.add (local.get $entries) (i32.const 12)))
        (local.set $count (i32.sub (local.get $count) (i32.const 1)))
        (br $next)))
    (local.get $sum))
  (func (export "cm32p2|test:maps/api@0.1|groups") (result i32)
    (call $return_map (i32.const 104) (i32.const 2)))
  (func (export "cm32p2|test:maps/api@0.1|duplicates") (result i32)
    (call $return_map (i32.const 128) (i32.const 3)))
  ;; The import writes its result's (pointer, count) at the return area itself.
  (func (export "cm32p2|test:maps/api@0.1|via-tally") (param i32 i32) (result i32)
    (call $tally (local.get 0) (local.get 1) (i32.const 8))
    (i32.const 8))
  (func (export "cm32p2|test:maps/api@0.1|via-regroup") (param i32 i32) (result i32)
    (call $regroup (local.get 0) (local.get 1) (i32.const 8))
    (i32.const 8))
  (func (export "cm32p2|test:maps/api@0.1|tally-duplicates") (result i32)
    (call $tally (i32.const 128) (i32.const 3) (i32.const 8))
    (i32.const 8))
  ;; A bump allocator: what wasmtime lowers arguments and import results into. Never frees.
  (func (export "cm32p2_realloc") (param $old i32) (param $old_size i32) (param $align i32) (param $size i32)
                                  (result i32)
    (local $at i32)
    (local.set $at (i32.and (i32.add (global.get $heap) (i32.sub (local.get $align) (i32.const 1)))
                            (i32.sub (i32.const 0) (local.get $align))))
    (global.set $heap (i32.add (local.get $at) (local.get $size)))
    (if (i32.gt_u (global.get $heap) (i32.shl (memory.size) (i32.const 16)))
      (then
        (if (i32.eq (memory.grow (i32.add (i32.shr_u (i32.sub (global.get $heap) (i32.shl (memory.size)
                                                                                       (i32.const 16)))
                                                     (i32.const 16))
                                          (i32.const 1)))
                    (i32.const -1))
          (then unreachable))))
    (if (local.get $old_size)
      (then (memory.copy (local.get $at) (local.get $old) (local.get $old_size))))
    (local.get $at))
  (func (export "cm32p2_initialize")))
