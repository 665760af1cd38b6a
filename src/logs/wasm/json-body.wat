;; The json-file decoder's body loop in WebAssembly (src/logs/jsonfile.ts calls it when the read
;; chunk and the body slab are both in this module's memory): finds the closing quote of a
;; record's `log` string, unescapes and copies the string, sixteen bytes a step (SIMD) through
;; bytes that are no quote, backslash or control byte, and then looks every byte pair at an even
;; offset of what it wrote up in the redaction literals' pair table. The same decisions as the
;; JavaScript loop it replaces (test/unit/logs/wasm-body.test.ts compares them).
;;
;; Memory: [0, 128 KiB) the pair table (65,536 little-endian u16, ByteLiterals.pairsLE);
;; [128 KiB, +24) the results (i32: end of output, literal hits, non-ASCII seen, last byte from a
;; \n escape, escapes, control bytes seen); the rest read buffers and body slabs (jsonfile.ts).
;; A 16-byte store never passes the output offset plus the input consumed, so it stays in the
;; room the decoder sized for the body.
;;
;; body(i, lim, o, pairs, known) -> q: the closing quote's offset; -1: an escape JSON.parse must
;; decide (\uXXXX or invalid); -2: no closing quote before lim; -3: a raw newline with the
;; record's end unknown (the caller cuts the line there).
;; Build: `npm run wasm` (scripts/build-wasm.ts) writes json-body.ts from this file.
(module
  (memory (export "mem") 1)
  ;; body(i, lim, o, pairs, known) -> q (closing quote), -1: JSON.parse decides, -2: no quote, -3: raw newline (end unknown)
  (func (export "body") (param $i i32) (param $lim i32) (param $o i32) (param $pairs i32) (param $known i32) (result i32)
    (local $o0 i32) (local $v v128) (local $sp v128) (local $hiv v128) (local $m i32) (local $k i32)
    (local $c i32) (local $q i32) (local $nl i32) (local $esc i32) (local $ctl i32) (local $hi i32) (local $lit i32) (local $p i32)
    (local.set $o0 (local.get $o))
    (local.set $q (i32.const -2))
    (block $done
      (loop $outer
        ;; 16 bytes at a time
        (block $scalar
          (loop $vec
            (br_if $scalar (i32.gt_u (i32.add (local.get $i) (i32.const 16)) (local.get $lim)))
            (local.set $v (v128.load align=1 (local.get $i)))
            (local.set $sp (v128.or
              (v128.or (i8x16.eq (local.get $v) (v128.const i8x16 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22 0x22))
                       (i8x16.eq (local.get $v) (v128.const i8x16 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c 0x5c)))
              (i8x16.lt_u (local.get $v) (v128.const i8x16 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20 0x20))))
            (v128.store align=1 (local.get $o) (local.get $v))
            (local.set $m (i8x16.bitmask (local.get $sp)))
            (if (i32.eqz (local.get $m))
              (then
                (local.set $hiv (v128.or (local.get $hiv) (local.get $v)))
                (local.set $o (i32.add (local.get $o) (i32.const 16)))
                (local.set $i (i32.add (local.get $i) (i32.const 16)))
                (local.set $nl (i32.const 0))
                (br $vec)))
            (local.set $k (i32.ctz (local.get $m)))
            (if (local.get $k) (then
              (local.set $hiv (v128.or (local.get $hiv) (local.get $v)))
              (local.set $nl (i32.const 0))))
            (local.set $o (i32.add (local.get $o) (local.get $k)))
            (local.set $i (i32.add (local.get $i) (local.get $k)))
            (br $scalar)))
        (br_if $done (i32.ge_u (local.get $i) (local.get $lim)))
        (local.set $c (i32.load8_u (local.get $i)))
        (if (i32.eq (local.get $c) (i32.const 0x22)) (then (local.set $q (local.get $i)) (br $done)))
        (if (i32.eq (local.get $c) (i32.const 0x5c))
          (then
            (local.set $c (i32.load8_u (i32.add (local.get $i) (i32.const 1))))
            (block $ok
              (block $bad
                (if (i32.eq (local.get $c) (i32.const 0x6e)) (then (local.set $c (i32.const 0x0a)) (br $ok)))
                (if (i32.eq (local.get $c) (i32.const 0x22)) (then (br $ok)))
                (if (i32.eq (local.get $c) (i32.const 0x5c)) (then (br $ok)))
                (if (i32.eq (local.get $c) (i32.const 0x2f)) (then (br $ok)))
                (if (i32.eq (local.get $c) (i32.const 0x74)) (then (local.set $c (i32.const 0x09)) (br $ok)))
                (if (i32.eq (local.get $c) (i32.const 0x72)) (then (local.set $c (i32.const 0x0d)) (br $ok)))
                (if (i32.eq (local.get $c) (i32.const 0x62)) (then (local.set $c (i32.const 0x08)) (br $ok)))
                (if (i32.eq (local.get $c) (i32.const 0x66)) (then (local.set $c (i32.const 0x0c)) (br $ok)))
                (br $bad))
              (return (i32.const -1)))
            (i32.store8 (local.get $o) (local.get $c))
            (local.set $o (i32.add (local.get $o) (i32.const 1)))
            (local.set $nl (i32.eq (local.get $c) (i32.const 0x0a)))
            (local.set $esc (i32.add (local.get $esc) (i32.const 1)))
            (local.set $i (i32.add (local.get $i) (i32.const 2)))
            (br $outer)))
        ;; a control byte (the only other reason to leave the vector loop), or a tail byte
        (local.set $hi (i32.or (local.get $hi) (local.get $c)))
        (if (i32.lt_u (local.get $c) (i32.const 0x20))
          (then
            (if (i32.and (i32.eqz (local.get $known)) (i32.eq (local.get $c) (i32.const 0x0a))) (then (return (i32.const -3))))
            (local.set $ctl (i32.const 1))))
        (i32.store8 (local.get $o) (local.get $c))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (local.set $nl (i32.const 0))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $outer)))
    ;; the redaction literals' pairs at even offsets of what was written
    (if (local.get $pairs)
      (then
        (local.set $p (local.get $o0))
        (block $pd
          (loop $pl
            (br_if $pd (i32.gt_u (i32.add (local.get $p) (i32.const 2)) (local.get $o)))
            (local.set $lit (i32.or (local.get $lit)
              (i32.load16_u (i32.shl (i32.load16_u align=1 (local.get $p)) (i32.const 1)))))
            (local.set $p (i32.add (local.get $p) (i32.const 2)))
            (br $pl)))))
    (i32.store (i32.const 131072) (local.get $o))
    (i32.store (i32.const 131076) (local.get $lit))
    (i32.store (i32.const 131080) (i32.or (i32.and (local.get $hi) (i32.const 0x80)) (i8x16.bitmask (local.get $hiv))))
    (i32.store (i32.const 131084) (local.get $nl))
    (i32.store (i32.const 131088) (local.get $esc))
    (i32.store (i32.const 131092) (local.get $ctl))
    (local.get $q))
)
