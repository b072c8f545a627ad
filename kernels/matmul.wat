;; y = x · Wᵀ (+ b) for a block of tokens, float32, WebAssembly SIMD128.
;;
;; Every pointer is a byte offset into the imported linear memory; a bias pointer of 0 means no bias
;; (address 0 is never handed out). W is [m, n] row-major (PyTorch Linear), x is [T, n], y is [T, ys].
;;
;; Determinism: each output y[t, o] is summed in one fixed order whatever T is and wherever the token or
;; the output row sits in its block:
;;   acc (4 lanes) = 0;  for k = 0, 4, 8, .. < n4 (= n rounded down to 4): acc += w[o, k..k+4] * x[t, k..k+4]
;;   s = (acc0 + acc1) + (acc2 + acc3);  for k = n4 .. n-1: s += w[o, k] * x[t, k];  s += b[o]
;; with every product and sum rounded to float32 (f32x4.mul then f32x4.add; no fused multiply-add). The
;; register-blocked kernels below only change which pairs are computed together, never this order, so
;; kernels/matmul.ts' scalar fallback (the same order with Math.fround) matches them bit for bit.
(module
  (import "env" "memory" (memory 1 65536))

  ;; The fixed horizontal reduction and scalar tail of one (token, output) pair. k and end are byte
  ;; offsets of the tail within the rows x and w; b is the bias element's address or 0.
  (func $finish (param $acc v128) (param $x i32) (param $w i32) (param $k i32) (param $end i32)
    (param $b i32) (result f32)
    (local $s f32)
    (local.set $s (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (block $done (loop $tail
      (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
      (local.set $s (f32.add (local.get $s) (f32.mul
        (f32.load (i32.add (local.get $w) (local.get $k)))
        (f32.load (i32.add (local.get $x) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $tail)))
    (if (local.get $b) (then (local.set $s (f32.add (local.get $s) (f32.load (local.get $b))))))
    (local.get $s))

  ;; bias address of output row o (b + 4 o), or 0 when there is no bias
  (func $bias (param $b i32) (param $o i32) (result i32)
    (select (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2))) (i32.const 0) (local.get $b)))

  ;; 2 tokens x 4 output rows: 8 accumulators + 4 weight vectors + 1 x vector fit the 16 SIMD registers
  ;; of x86-64, so nothing spills; each weight vector loaded is used by both tokens. x: first token row,
  ;; w: first weight row, y: y[t, o] of the first pair; nb = n * 4 (row bytes), ysb = row bytes of y.
  (func $k2x4 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32) (param $ysb i32)
    (local $k i32) (local $n4 i32) (local $x1 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $y1 i32)
    (local $wv0 v128) (local $wv1 v128) (local $wv2 v128) (local $wv3 v128) (local $xv v128)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128)
    (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (local.set $x1 (i32.add (local.get $x) (local.get $nb)))
    (local.set $w1 (i32.add (local.get $w) (local.get $nb)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $nb)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $nb)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $wv0 (v128.load (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load (i32.add (local.get $w1) (local.get $k))))
      (local.set $wv2 (v128.load (i32.add (local.get $w2) (local.get $k))))
      (local.set $wv3 (v128.load (i32.add (local.get $w3) (local.get $k))))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $main)))
    (local.set $y1 (i32.add (local.get $y) (local.get $ysb)))
    (f32.store offset=0 (local.get $y) (call $finish (local.get $a00) (local.get $x) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y) (call $finish (local.get $a01) (local.get $x) (local.get $w1)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=8 (local.get $y) (call $finish (local.get $a02) (local.get $x) (local.get $w2)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 2))))
    (f32.store offset=12 (local.get $y) (call $finish (local.get $a03) (local.get $x) (local.get $w3)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 3))))
    (f32.store offset=0 (local.get $y1) (call $finish (local.get $a10) (local.get $x1) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y1) (call $finish (local.get $a11) (local.get $x1) (local.get $w1)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=8 (local.get $y1) (call $finish (local.get $a12) (local.get $x1) (local.get $w2)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 2))))
    (f32.store offset=12 (local.get $y1) (call $finish (local.get $a13) (local.get $x1) (local.get $w3)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 3)))))

  ;; 1 token x 4 output rows (single-token decode, and the odd token of a block).
  (func $k1x4 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32)
    (local $k i32) (local $n4 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32) (local $xv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (local.set $w1 (i32.add (local.get $w) (local.get $nb)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $nb)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $nb)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $xv (v128.load (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0)
        (f32x4.mul (v128.load (i32.add (local.get $w) (local.get $k))) (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1)
        (f32x4.mul (v128.load (i32.add (local.get $w1) (local.get $k))) (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2)
        (f32x4.mul (v128.load (i32.add (local.get $w2) (local.get $k))) (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3)
        (f32x4.mul (v128.load (i32.add (local.get $w3) (local.get $k))) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $main)))
    (f32.store offset=0 (local.get $y) (call $finish (local.get $a0) (local.get $x) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y) (call $finish (local.get $a1) (local.get $x) (local.get $w1)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=8 (local.get $y) (call $finish (local.get $a2) (local.get $x) (local.get $w2)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 2))))
    (f32.store offset=12 (local.get $y) (call $finish (local.get $a3) (local.get $x) (local.get $w3)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 3)))))

  ;; 1 token x 1 output row (the last m % 4 rows).
  (func $k1x1 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32)
    (local $k i32) (local $n4 i32) (local $a v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $a (f32x4.add (local.get $a) (f32x4.mul
        (v128.load (i32.add (local.get $w) (local.get $k)))
        (v128.load (i32.add (local.get $x) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $main)))
    (f32.store (local.get $y) (call $finish (local.get $a) (local.get $x) (local.get $w) (local.get $n4)
      (local.get $nb) (call $bias (local.get $b) (i32.const 0)))))

  ;; y[t, o] = x[t, :] · w[o, :] (+ b[o]) for t < T, o < m. x: [T, n], w: [m, n], y: [T, ys] (ys >= m).
  ;; Output rows go in groups of 4; within a group, tokens go in pairs, so the group's 4 weight rows
  ;; (16 n bytes) stay in L1 while every token of the block streams past them.
  (func (export "matmul") (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $T i32)
    (param $n i32) (param $m i32) (param $ys i32)
    (local $o i32) (local $t i32) (local $nb i32) (local $ysb i32) (local $wo i32) (local $bo i32)
    (local $xt i32) (local $yt i32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $ysb (i32.shl (local.get $ys) (i32.const 2)))
    (block $odone (loop $orows
      (br_if $odone (i32.gt_u (i32.add (local.get $o) (i32.const 4)) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $nb))))
      (local.set $bo (call $bias (local.get $b) (local.get $o)))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $pairs
        (br_if $tdone (i32.gt_u (i32.add (local.get $t) (i32.const 2)) (local.get $T)))
        (call $k2x4 (local.get $xt) (local.get $wo) (local.get $bo) (local.get $yt) (local.get $nb)
          (local.get $ysb))
        (local.set $xt (i32.add (local.get $xt) (i32.shl (local.get $nb) (i32.const 1))))
        (local.set $yt (i32.add (local.get $yt) (i32.shl (local.get $ysb) (i32.const 1))))
        (local.set $t (i32.add (local.get $t) (i32.const 2)))
        (br $pairs)))
      (if (i32.lt_u (local.get $t) (local.get $T))
        (then (call $k1x4 (local.get $xt) (local.get $wo) (local.get $bo) (local.get $yt) (local.get $nb))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $orows)))
    (block $odone (loop $orow
      (br_if $odone (i32.ge_u (local.get $o) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $nb))))
      (local.set $bo (call $bias (local.get $b) (local.get $o)))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $tokens
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $T)))
        (call $k1x1 (local.get $xt) (local.get $wo) (local.get $bo) (local.get $yt) (local.get $nb))
        (local.set $xt (i32.add (local.get $xt) (local.get $nb)))
        (local.set $yt (i32.add (local.get $yt) (local.get $ysb)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tokens)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $orow)))))
