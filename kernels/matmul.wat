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
;; register-blocked kernels below only change which pairs are computed together, never this order (their
;; inner loops take 4 steps of k per pass with constant load offsets, then single steps), so
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
    (local $k i32) (local $n4 i32) (local $n16 i32) (local $x1 i32) (local $w1 i32) (local $w2 i32)
    (local $w3 i32) (local $y1 i32)
    (local $wv0 v128) (local $wv1 v128) (local $wv2 v128) (local $wv3 v128) (local $xv v128)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128)
    (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (local.set $x1 (i32.add (local.get $x) (local.get $nb)))
    (local.set $w1 (i32.add (local.get $w) (local.get $nb)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $nb)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $nb)))
    ;; 4 steps of k per pass (constant load offsets), then single steps: the same order per lane
    (local.set $n16 (i32.and (local.get $nb) (i32.const -64)))
    (block $done16 (loop $main16
      (br_if $done16 (i32.ge_u (local.get $k) (local.get $n16)))
      (local.set $wv0 (v128.load offset=0 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=0 (i32.add (local.get $w1) (local.get $k))))
      (local.set $wv2 (v128.load offset=0 (i32.add (local.get $w2) (local.get $k))))
      (local.set $wv3 (v128.load offset=0 (i32.add (local.get $w3) (local.get $k))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $wv0 (v128.load offset=16 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=16 (i32.add (local.get $w1) (local.get $k))))
      (local.set $wv2 (v128.load offset=16 (i32.add (local.get $w2) (local.get $k))))
      (local.set $wv3 (v128.load offset=16 (i32.add (local.get $w3) (local.get $k))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $wv0 (v128.load offset=32 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=32 (i32.add (local.get $w1) (local.get $k))))
      (local.set $wv2 (v128.load offset=32 (i32.add (local.get $w2) (local.get $k))))
      (local.set $wv3 (v128.load offset=32 (i32.add (local.get $w3) (local.get $k))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $wv0 (v128.load offset=48 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=48 (i32.add (local.get $w1) (local.get $k))))
      (local.set $wv2 (v128.load offset=48 (i32.add (local.get $w2) (local.get $k))))
      (local.set $wv3 (v128.load offset=48 (i32.add (local.get $w3) (local.get $k))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 64)))
      (br $main16)))
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

  ;; 4 tokens x 2 output rows: each weight vector loaded serves 4 tokens, and the 2 rows stream from memory
  ;; in a single pass while 4 tokens' products are computed (with 2 x 4 the 4 weight rows would be read
  ;; from memory by the first token pair, then again from cache by the second). Arguments as $k2x4.
  (func $k4x2 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32) (param $ysb i32)
    (local $k i32) (local $n4 i32) (local $n16 i32) (local $x1 i32) (local $x2 i32) (local $x3 i32)
    (local $w1 i32) (local $y1 i32) (local $y2 i32) (local $y3 i32)
    (local $wv0 v128) (local $wv1 v128) (local $xv v128)
    (local $a00 v128) (local $a01 v128) (local $a10 v128) (local $a11 v128)
    (local $a20 v128) (local $a21 v128) (local $a30 v128) (local $a31 v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (local.set $n16 (i32.and (local.get $nb) (i32.const -64)))
    (local.set $x1 (i32.add (local.get $x) (local.get $nb)))
    (local.set $x2 (i32.add (local.get $x1) (local.get $nb)))
    (local.set $x3 (i32.add (local.get $x2) (local.get $nb)))
    (local.set $w1 (i32.add (local.get $w) (local.get $nb)))
    (block $done16 (loop $main16
      (br_if $done16 (i32.ge_u (local.get $k) (local.get $n16)))
      (local.set $wv0 (v128.load offset=0 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=0 (i32.add (local.get $w1) (local.get $k))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x2) (local.get $k))))
      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x3) (local.get $k))))
      (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $wv0 (v128.load offset=16 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=16 (i32.add (local.get $w1) (local.get $k))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x2) (local.get $k))))
      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x3) (local.get $k))))
      (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $wv0 (v128.load offset=32 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=32 (i32.add (local.get $w1) (local.get $k))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x2) (local.get $k))))
      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x3) (local.get $k))))
      (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $wv0 (v128.load offset=48 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=48 (i32.add (local.get $w1) (local.get $k))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x2) (local.get $k))))
      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x3) (local.get $k))))
      (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 64)))
      (br $main16)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $wv0 (v128.load offset=0 (i32.add (local.get $w) (local.get $k))))
      (local.set $wv1 (v128.load offset=0 (i32.add (local.get $w1) (local.get $k))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x2) (local.get $k))))
      (local.set $a20 (f32x4.add (local.get $a20) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a21 (f32x4.add (local.get $a21) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x3) (local.get $k))))
      (local.set $a30 (f32x4.add (local.get $a30) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a31 (f32x4.add (local.get $a31) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $main)))
    (local.set $y1 (i32.add (local.get $y) (local.get $ysb)))
    (local.set $y2 (i32.add (local.get $y1) (local.get $ysb)))
    (local.set $y3 (i32.add (local.get $y2) (local.get $ysb)))
    (f32.store offset=0 (local.get $y) (call $finish (local.get $a00) (local.get $x) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y) (call $finish (local.get $a01) (local.get $x) (local.get $w1)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=0 (local.get $y1) (call $finish (local.get $a10) (local.get $x1) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y1) (call $finish (local.get $a11) (local.get $x1) (local.get $w1)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=0 (local.get $y2) (call $finish (local.get $a20) (local.get $x2) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y2) (call $finish (local.get $a21) (local.get $x2) (local.get $w1)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=0 (local.get $y3) (call $finish (local.get $a30) (local.get $x3) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y3) (call $finish (local.get $a31) (local.get $x3) (local.get $w1)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1)))))

  ;; 1 token x 4 output rows (single-token decode, and the odd token of a block).
  (func $k1x4 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32)
    (local $k i32) (local $n4 i32) (local $n16 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $xv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (local.set $w1 (i32.add (local.get $w) (local.get $nb)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $nb)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $nb)))
    (local.set $n16 (i32.and (local.get $nb) (i32.const -64)))
    (block $done16 (loop $main16
      (br_if $done16 (i32.ge_u (local.get $k) (local.get $n16)))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0)
        (f32x4.mul (v128.load offset=0 (i32.add (local.get $w) (local.get $k))) (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1)
        (f32x4.mul (v128.load offset=0 (i32.add (local.get $w1) (local.get $k))) (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2)
        (f32x4.mul (v128.load offset=0 (i32.add (local.get $w2) (local.get $k))) (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3)
        (f32x4.mul (v128.load offset=0 (i32.add (local.get $w3) (local.get $k))) (local.get $xv))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0)
        (f32x4.mul (v128.load offset=16 (i32.add (local.get $w) (local.get $k))) (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1)
        (f32x4.mul (v128.load offset=16 (i32.add (local.get $w1) (local.get $k))) (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2)
        (f32x4.mul (v128.load offset=16 (i32.add (local.get $w2) (local.get $k))) (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3)
        (f32x4.mul (v128.load offset=16 (i32.add (local.get $w3) (local.get $k))) (local.get $xv))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0)
        (f32x4.mul (v128.load offset=32 (i32.add (local.get $w) (local.get $k))) (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1)
        (f32x4.mul (v128.load offset=32 (i32.add (local.get $w1) (local.get $k))) (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2)
        (f32x4.mul (v128.load offset=32 (i32.add (local.get $w2) (local.get $k))) (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3)
        (f32x4.mul (v128.load offset=32 (i32.add (local.get $w3) (local.get $k))) (local.get $xv))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0)
        (f32x4.mul (v128.load offset=48 (i32.add (local.get $w) (local.get $k))) (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1)
        (f32x4.mul (v128.load offset=48 (i32.add (local.get $w1) (local.get $k))) (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2)
        (f32x4.mul (v128.load offset=48 (i32.add (local.get $w2) (local.get $k))) (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3)
        (f32x4.mul (v128.load offset=48 (i32.add (local.get $w3) (local.get $k))) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 64)))
      (br $main16)))
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

  ;; @rowTiles

  ;; y[t, o] = x[t, :] · w[o, :] (+ b[o]) for t < T, o < m. x: [T, n], w: [m, n], y: [T, ys] (ys >= m).
  ;; Up to 8 tokens (decoding, verification trees): $rows, one weight row at a time. Each row is read once,
  ;; as one sequential stream, by a tile holding every token's accumulator; measured here 1.4-2x faster
  ;; than 4-row groups at 1-3 tokens (four interleaved row streams read memory at about half the rate
  ;; of one) and no slower up to 8.
  ;; More tokens (prefill): output rows in groups of 4; within a group, tokens go in quads (as two 4 x 2
  ;; tiles), then pairs, then one, so the group's 4 weight rows (16 n bytes) stay in L1 while every token
  ;; of the block streams past them.
  (func (export "matmul") (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $T i32)
    (param $n i32) (param $m i32) (param $ys i32)
    (local $o i32) (local $t i32) (local $nb i32) (local $ysb i32) (local $wo i32) (local $bo i32)
    (local $xt i32) (local $yt i32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $ysb (i32.shl (local.get $ys) (i32.const 2)))
    (if (i32.le_u (local.get $T) (i32.const 8)) (then
      (call $rows (local.get $x) (local.get $w) (local.get $b) (local.get $y) (local.get $T) (local.get $nb)
        (local.get $ysb) (local.get $m))
      (return)))
    (block $odone (loop $orows
      (br_if $odone (i32.gt_u (i32.add (local.get $o) (i32.const 4)) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $nb))))
      (local.set $bo (call $bias (local.get $b) (local.get $o)))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $qdone (loop $quads
        (br_if $qdone (i32.gt_u (i32.add (local.get $t) (i32.const 4)) (local.get $T)))
        (call $k4x2 (local.get $xt) (local.get $wo) (local.get $bo) (local.get $yt) (local.get $nb)
          (local.get $ysb))
        (call $k4x2 (local.get $xt) (i32.add (local.get $wo) (i32.shl (local.get $nb) (i32.const 1)))
          (call $bias (local.get $b) (i32.add (local.get $o) (i32.const 2)))
          (i32.add (local.get $yt) (i32.const 8)) (local.get $nb) (local.get $ysb))
        (local.set $xt (i32.add (local.get $xt) (i32.shl (local.get $nb) (i32.const 2))))
        (local.set $yt (i32.add (local.get $yt) (i32.shl (local.get $ysb) (i32.const 2))))
        (local.set $t (i32.add (local.get $t) (i32.const 4)))
        (br $quads)))
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
      (br $orow))))

  ;; ---- float32 weights in row pairs (kernels/mod.ts pack()) ----
  ;; matmul_p2 is matmul with W laid out in pairs of rows: pair p (rows 2p, 2p + 1) keeps its 2n floats
  ;; where the two rows were, as 8-float chunks (at k = 0, 4, 8, .. < n4: w[2p, k..k+4], w[2p+1, k..k+4]),
  ;; then row 2p's scalar tail, then row 2p+1's; an odd last row stays as it was. Four interleaved row
  ;; streams read memory at about half the rate of one, so a pair of rows read as one stream lets a tile
  ;; compute two rows (twice the independent add chains of $r1 .. $r5) at the full rate: measured 13-21%
  ;; faster than matmul at 1-5 tokens. The per-output order is matmul's, so y is bitwise matmul's on the
  ;; unpacked W, whatever T is.
  ;; Up to 5 tokens take one pass over each pair; more take several (the pair stays in L1 after the first).
  ;; @pairTiles

  ;; ---- SwiGLU's activation: y[i] = silu(g[i]) * y[i], float32 x 4 ----
  ;; @include exp4.wat

  ;; y[i] = (g[i] / (1 + e^-g[i])) * y[i] for i < n (n a multiple of 4; the caller pads), float32 steps.
  (func (export "silu_mul") (param $g i32) (param $y i32) (param $n i32)
    (local $i i32) (local $gv v128)
    (local.set $n (i32.shl (local.get $n) (i32.const 2)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $i) (local.get $n)))
      (local.set $gv (v128.load (i32.add (local.get $g) (local.get $i))))
      (v128.store (i32.add (local.get $y) (local.get $i)) (f32x4.mul
        (f32x4.div (local.get $gv) (f32x4.add (v128.const f32x4 1 1 1 1)
          (call $exp4 (f32x4.neg (local.get $gv)))))
        (v128.load (i32.add (local.get $y) (local.get $i)))))
      (local.set $i (i32.add (local.get $i) (i32.const 16)))
      (br $main))))

  ;; ---- bf16 weights ----
  ;; matmul_bf16 is matmul with W stored as bf16 ([m, n] uint16, the top halves of float32 values): each
  ;; weight widens exactly to float32 as it is loaded, and every product and sum is the float32 kernels',
  ;; in their order, so y is bitwise what matmul gives on the widened W, at half the weight bytes read.
  ;; Tiles are 2 x 4, 1 x 4 and 1 x 1 (any tiling gives the same bits; the drafter runs few tokens).

  ;; $finish with a bf16 weight row: k and end are byte offsets into the float32 row x; the weight's
  ;; element at x byte offset k is at w + k / 2.
  (func $finishBf16 (param $acc v128) (param $x i32) (param $w i32) (param $k i32) (param $end i32)
    (param $b i32) (result f32)
    (local $s f32)
    (local.set $s (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (block $done (loop $tail
      (br_if $done (i32.ge_u (local.get $k) (local.get $end)))
      (local.set $s (f32.add (local.get $s) (f32.mul
        (f32.reinterpret_i32 (i32.shl
          (i32.load16_u (i32.add (local.get $w) (i32.shr_u (local.get $k) (i32.const 1))))
          (i32.const 16)))
        (f32.load (i32.add (local.get $x) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 4)))
      (br $tail)))
    (if (local.get $b) (then (local.set $s (f32.add (local.get $s) (f32.load (local.get $b))))))
    (local.get $s))

  ;; 1 token x 4 bf16 weight rows. Weight rows are n * 2 bytes; $kw = $k / 2 is the weight byte offset of
  ;; the x byte offset $k. Each loaded group of 4 bf16 widens exactly to 4 float32 (the bits go to the top
  ;; half), and the products and sums follow the float32 kernels' order.
  (func $b1x4 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32)
    (local $k i32) (local $kw i32) (local $n4 i32) (local $n16 i32) (local $w1 i32) (local $w2 i32)
    (local $w3 i32) (local $xv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (local.set $n16 (i32.and (local.get $nb) (i32.const -64)))
    (local.set $w1 (i32.add (local.get $w) (i32.shr_u (local.get $nb) (i32.const 1))))
    (local.set $w2 (i32.add (local.get $w1) (i32.shr_u (local.get $nb) (i32.const 1))))
    (local.set $w3 (i32.add (local.get $w2) (i32.shr_u (local.get $nb) (i32.const 1))))
    (block $done16 (loop $main16
      (br_if $done16 (i32.ge_u (local.get $k) (local.get $n16)))
      (local.set $kw (i32.shr_u (local.get $k) (i32.const 1)))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 64)))
      (br $main16)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $kw (i32.shr_u (local.get $k) (i32.const 1)))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16))
        (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $main)))
    (f32.store offset=0 (local.get $y) (call $finishBf16 (local.get $a0) (local.get $x)
      (local.get $w) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y) (call $finishBf16 (local.get $a1) (local.get $x)
      (local.get $w1) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=8 (local.get $y) (call $finishBf16 (local.get $a2) (local.get $x)
      (local.get $w2) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 2))))
    (f32.store offset=12 (local.get $y) (call $finishBf16 (local.get $a3) (local.get $x)
      (local.get $w3) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 3)))))

;; 2 tokens x 4 bf16 weight rows (as $k2x4, weights as $b1x4).
  (func $b2x4 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32) (param $ysb i32)
    (local $k i32) (local $kw i32) (local $n4 i32) (local $n16 i32) (local $x1 i32) (local $w1 i32)
    (local $w2 i32) (local $w3 i32) (local $y1 i32)
    (local $wv0 v128) (local $wv1 v128) (local $wv2 v128) (local $wv3 v128) (local $xv v128)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128)
    (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (local.set $n16 (i32.and (local.get $nb) (i32.const -64)))
    (local.set $x1 (i32.add (local.get $x) (local.get $nb)))
    (local.set $w1 (i32.add (local.get $w) (i32.shr_u (local.get $nb) (i32.const 1))))
    (local.set $w2 (i32.add (local.get $w1) (i32.shr_u (local.get $nb) (i32.const 1))))
    (local.set $w3 (i32.add (local.get $w2) (i32.shr_u (local.get $nb) (i32.const 1))))
    (block $done16 (loop $main16
      (br_if $done16 (i32.ge_u (local.get $k) (local.get $n16)))
      (local.set $kw (i32.shr_u (local.get $k) (i32.const 1)))
      (local.set $wv0
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w) (local.get $kw))) (i32.const 16)))
      (local.set $wv1
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16)))
      (local.set $wv2
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16)))
      (local.set $wv3
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16)))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $wv0
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w) (local.get $kw))) (i32.const 16)))
      (local.set $wv1
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16)))
      (local.set $wv2
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16)))
      (local.set $wv3
        (i32x4.shl (v128.load16x4_u offset=8 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16)))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=16 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $wv0
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w) (local.get $kw))) (i32.const 16)))
      (local.set $wv1
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16)))
      (local.set $wv2
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16)))
      (local.set $wv3
        (i32x4.shl (v128.load16x4_u offset=16 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16)))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=32 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $wv0
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w) (local.get $kw))) (i32.const 16)))
      (local.set $wv1
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16)))
      (local.set $wv2
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16)))
      (local.set $wv3
        (i32x4.shl (v128.load16x4_u offset=24 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16)))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=48 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 64)))
      (br $main16)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $kw (i32.shr_u (local.get $k) (i32.const 1)))
      (local.set $wv0
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w) (local.get $kw))) (i32.const 16)))
      (local.set $wv1
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w1) (local.get $kw))) (i32.const 16)))
      (local.set $wv2
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w2) (local.get $kw))) (i32.const 16)))
      (local.set $wv3
        (i32x4.shl (v128.load16x4_u offset=0 (i32.add (local.get $w3) (local.get $kw))) (i32.const 16)))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x) (local.get $k))))
      (local.set $a00 (f32x4.add (local.get $a00) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a01 (f32x4.add (local.get $a01) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a02 (f32x4.add (local.get $a02) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a03 (f32x4.add (local.get $a03) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $xv (v128.load offset=0 (i32.add (local.get $x1) (local.get $k))))
      (local.set $a10 (f32x4.add (local.get $a10) (f32x4.mul (local.get $wv0) (local.get $xv))))
      (local.set $a11 (f32x4.add (local.get $a11) (f32x4.mul (local.get $wv1) (local.get $xv))))
      (local.set $a12 (f32x4.add (local.get $a12) (f32x4.mul (local.get $wv2) (local.get $xv))))
      (local.set $a13 (f32x4.add (local.get $a13) (f32x4.mul (local.get $wv3) (local.get $xv))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $main)))
    (local.set $y1 (i32.add (local.get $y) (local.get $ysb)))
    (f32.store offset=0 (local.get $y) (call $finishBf16 (local.get $a00) (local.get $x)
      (local.get $w) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y) (call $finishBf16 (local.get $a01) (local.get $x)
      (local.get $w1) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=8 (local.get $y) (call $finishBf16 (local.get $a02) (local.get $x)
      (local.get $w2) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 2))))
    (f32.store offset=12 (local.get $y) (call $finishBf16 (local.get $a03) (local.get $x)
      (local.get $w3) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 3))))
    (f32.store offset=0 (local.get $y1) (call $finishBf16 (local.get $a10) (local.get $x1)
      (local.get $w) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0))))
    (f32.store offset=4 (local.get $y1) (call $finishBf16 (local.get $a11) (local.get $x1)
      (local.get $w1) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 1))))
    (f32.store offset=8 (local.get $y1) (call $finishBf16 (local.get $a12) (local.get $x1)
      (local.get $w2) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 2))))
    (f32.store offset=12 (local.get $y1) (call $finishBf16 (local.get $a13) (local.get $x1)
      (local.get $w3) (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 3)))))

  ;; 1 token x 1 bf16 weight row (the last m % 4 rows).
  (func $b1x1 (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $nb i32)
    (local $k i32) (local $n4 i32) (local $a v128)
    (local.set $n4 (i32.and (local.get $nb) (i32.const -16)))
    (block $done (loop $main
      (br_if $done (i32.ge_u (local.get $k) (local.get $n4)))
      (local.set $a (f32x4.add (local.get $a) (f32x4.mul
        (i32x4.shl (v128.load16x4_u (i32.add (local.get $w) (i32.shr_u (local.get $k) (i32.const 1))))
          (i32.const 16))
        (v128.load (i32.add (local.get $x) (local.get $k))))))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $main)))
    (f32.store (local.get $y) (call $finishBf16 (local.get $a) (local.get $x) (local.get $w)
      (local.get $n4) (local.get $nb) (call $bias (local.get $b) (i32.const 0)))))

  ;; matmul with bf16 W (arguments as matmul; w rows are n * 2 bytes). Rows in groups of 4; within a
  ;; group, tokens in pairs then one, so the group's 4 rows (8 n bytes) stay in L1 across the block.
  (func (export "matmul_bf16") (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $T i32)
    (param $n i32) (param $m i32) (param $ys i32)
    (local $o i32) (local $t i32) (local $nb i32) (local $ysb i32) (local $wo i32) (local $bo i32)
    (local $xt i32) (local $yt i32)
    (local.set $nb (i32.shl (local.get $n) (i32.const 2)))
    (local.set $ysb (i32.shl (local.get $ys) (i32.const 2)))
    (block $odone (loop $orows
      (br_if $odone (i32.gt_u (i32.add (local.get $o) (i32.const 4)) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (i32.shl (local.get $n) (i32.const 1)))))
      (local.set $bo (call $bias (local.get $b) (local.get $o)))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $pairs
        (br_if $tdone (i32.gt_u (i32.add (local.get $t) (i32.const 2)) (local.get $T)))
        (call $b2x4 (local.get $xt) (local.get $wo) (local.get $bo) (local.get $yt) (local.get $nb)
          (local.get $ysb))
        (local.set $xt (i32.add (local.get $xt) (i32.shl (local.get $nb) (i32.const 1))))
        (local.set $yt (i32.add (local.get $yt) (i32.shl (local.get $ysb) (i32.const 1))))
        (local.set $t (i32.add (local.get $t) (i32.const 2)))
        (br $pairs)))
      (if (i32.lt_u (local.get $t) (local.get $T))
        (then (call $b1x4 (local.get $xt) (local.get $wo) (local.get $bo) (local.get $yt) (local.get $nb))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $orows)))
    (block $odone (loop $orow
      (br_if $odone (i32.ge_u (local.get $o) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (i32.shl (local.get $n) (i32.const 1)))))
      (local.set $bo (call $bias (local.get $b) (local.get $o)))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $tokens
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $T)))
        (call $b1x1 (local.get $xt) (local.get $wo) (local.get $bo) (local.get $yt) (local.get $nb))
        (local.set $xt (i32.add (local.get $xt) (local.get $nb)))
        (local.set $yt (i32.add (local.get $yt) (local.get $ysb)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tokens)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $orow))))
  ;; matmul_bf16p2 is matmul_bf16 with W laid out in pairs of rows, as matmul_p2 lays out float32 ones
  ;; (kernels/mod.ts pack() on a bf16 array): a pair keeps its 2n bf16 where the two rows were, as chunks of 4 of row
  ;; 2p then 4 of row 2p + 1, then row 2p's scalar tail, then row 2p + 1's; an odd last row stays as it was.
  ;; One stream per pair instead of matmul_bf16's four interleaved rows; the bits are matmul_bf16's.
  ;; @bf16PairTiles

  ;; ---- int8 weights (the drafter's quantized matrices; kernels/q8.ts) ----
  ;; matmul_q8: x is int16 [T, n] (each token row quantized with its own scale, applied by the caller), w is
  ;; int8 [m, n] (one scale per output row, in b's place: b[o] is row o's float32 scale), n a multiple of 8
  ;; (rows zero-padded). y[t, o] = f32(total · f64(b[o])) with total the exact integer x[t, :] · w[o, :]:
  ;; i32x4.dot_i16x8_s lanes summed over chunks of 512 inputs (|x| <= 32767 and |w| <= 127 keep a chunk's
  ;; four lanes together below 2^31), each chunk's sum added to a float64 total (exact). Integer sums do not
  ;; depend on their order, so any tiling, and kernels/q8.ts' scalar twin, give the same bits.

  ;; A chunk's four i32 lanes, summed (exactly), as float64.
  (func $hsumI32 (param $a v128) (result f64)
    (f64.convert_i32_s (i32.add
      (i32.add (i32x4.extract_lane 0 (local.get $a)) (i32x4.extract_lane 1 (local.get $a)))
      (i32.add (i32x4.extract_lane 2 (local.get $a)) (i32x4.extract_lane 3 (local.get $a))))))

  ;; y = f32(total · scale) with the scale at address s.
  (func $scaleQ8 (param $total f64) (param $s i32) (result f32)
    (f32.demote_f64 (f64.mul (local.get $total) (f64.promote_f32 (f32.load (local.get $s))))))

  ;; The end of the chunk starting at input k: min(k + 512, n).
  (func $chunkEnd (param $k i32) (param $n i32) (result i32)
    (select (i32.add (local.get $k) (i32.const 512)) (local.get $n)
      (i32.lt_u (i32.add (local.get $k) (i32.const 512)) (local.get $n))))

  ;; 1 token x 4 int8 rows. x: the token's int16 row, w: row 0 (rows are n bytes apart), s: row 0's scale.
  (func $q1x4 (param $x i32) (param $w i32) (param $s i32) (param $y i32) (param $n i32)
    (local $k i32) (local $end i32) (local $w1 i32) (local $w2 i32) (local $w3 i32) (local $xv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $t0 f64) (local $t1 f64) (local $t2 f64) (local $t3 f64)
    (local.set $w1 (i32.add (local.get $w) (local.get $n)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $n)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $n)))
    (block $done (loop $chunks
      (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
      (local.set $end (call $chunkEnd (local.get $k) (local.get $n)))
      (local.set $a0 (v128.const i32x4 0 0 0 0))
      (local.set $a1 (v128.const i32x4 0 0 0 0))
      (local.set $a2 (v128.const i32x4 0 0 0 0))
      (local.set $a3 (v128.const i32x4 0 0 0 0))
      (block $cdone (loop $inner
        (br_if $cdone (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $xv (v128.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 1)))))
        (local.set $a0 (i32x4.add (local.get $a0) (i32x4.dot_i16x8_s
          (v128.load8x8_s (i32.add (local.get $w) (local.get $k))) (local.get $xv))))
        (local.set $a1 (i32x4.add (local.get $a1) (i32x4.dot_i16x8_s
          (v128.load8x8_s (i32.add (local.get $w1) (local.get $k))) (local.get $xv))))
        (local.set $a2 (i32x4.add (local.get $a2) (i32x4.dot_i16x8_s
          (v128.load8x8_s (i32.add (local.get $w2) (local.get $k))) (local.get $xv))))
        (local.set $a3 (i32x4.add (local.get $a3) (i32x4.dot_i16x8_s
          (v128.load8x8_s (i32.add (local.get $w3) (local.get $k))) (local.get $xv))))
        (local.set $k (i32.add (local.get $k) (i32.const 8)))
        (br $inner)))
      (local.set $t0 (f64.add (local.get $t0) (call $hsumI32 (local.get $a0))))
      (local.set $t1 (f64.add (local.get $t1) (call $hsumI32 (local.get $a1))))
      (local.set $t2 (f64.add (local.get $t2) (call $hsumI32 (local.get $a2))))
      (local.set $t3 (f64.add (local.get $t3) (call $hsumI32 (local.get $a3))))
      (br $chunks)))
    (f32.store offset=0 (local.get $y) (call $scaleQ8 (local.get $t0) (local.get $s)))
    (f32.store offset=4 (local.get $y) (call $scaleQ8 (local.get $t1) (i32.add (local.get $s) (i32.const 4))))
    (f32.store offset=8 (local.get $y) (call $scaleQ8 (local.get $t2) (i32.add (local.get $s) (i32.const 8))))
    (f32.store offset=12 (local.get $y)
      (call $scaleQ8 (local.get $t3) (i32.add (local.get $s) (i32.const 12)))))

  ;; 2 tokens x 4 int8 rows: each weight vector loaded serves both tokens. ysb: bytes per y row.
  (func $q2x4 (param $x i32) (param $w i32) (param $s i32) (param $y i32) (param $n i32) (param $ysb i32)
    (local $k i32) (local $end i32) (local $x1 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32)
    (local $y1 i32) (local $xv0 v128) (local $xv1 v128) (local $wv v128)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128)
    (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128)
    (local $t00 f64) (local $t01 f64) (local $t02 f64) (local $t03 f64)
    (local $t10 f64) (local $t11 f64) (local $t12 f64) (local $t13 f64)
    (local.set $x1 (i32.add (local.get $x) (i32.shl (local.get $n) (i32.const 1))))
    (local.set $w1 (i32.add (local.get $w) (local.get $n)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $n)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $n)))
    (local.set $y1 (i32.add (local.get $y) (local.get $ysb)))
    (block $done (loop $chunks
      (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
      (local.set $end (call $chunkEnd (local.get $k) (local.get $n)))
      (local.set $a00 (v128.const i32x4 0 0 0 0))
      (local.set $a01 (v128.const i32x4 0 0 0 0))
      (local.set $a02 (v128.const i32x4 0 0 0 0))
      (local.set $a03 (v128.const i32x4 0 0 0 0))
      (local.set $a10 (v128.const i32x4 0 0 0 0))
      (local.set $a11 (v128.const i32x4 0 0 0 0))
      (local.set $a12 (v128.const i32x4 0 0 0 0))
      (local.set $a13 (v128.const i32x4 0 0 0 0))
      (block $cdone (loop $inner
        (br_if $cdone (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $xv0 (v128.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 1)))))
        (local.set $xv1 (v128.load (i32.add (local.get $x1) (i32.shl (local.get $k) (i32.const 1)))))
        (local.set $wv (v128.load8x8_s (i32.add (local.get $w) (local.get $k))))
        (local.set $a00 (i32x4.add (local.get $a00) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv0))))
        (local.set $a10 (i32x4.add (local.get $a10) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv1))))
        (local.set $wv (v128.load8x8_s (i32.add (local.get $w1) (local.get $k))))
        (local.set $a01 (i32x4.add (local.get $a01) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv0))))
        (local.set $a11 (i32x4.add (local.get $a11) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv1))))
        (local.set $wv (v128.load8x8_s (i32.add (local.get $w2) (local.get $k))))
        (local.set $a02 (i32x4.add (local.get $a02) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv0))))
        (local.set $a12 (i32x4.add (local.get $a12) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv1))))
        (local.set $wv (v128.load8x8_s (i32.add (local.get $w3) (local.get $k))))
        (local.set $a03 (i32x4.add (local.get $a03) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv0))))
        (local.set $a13 (i32x4.add (local.get $a13) (i32x4.dot_i16x8_s (local.get $wv) (local.get $xv1))))
        (local.set $k (i32.add (local.get $k) (i32.const 8)))
        (br $inner)))
      (local.set $t00 (f64.add (local.get $t00) (call $hsumI32 (local.get $a00))))
      (local.set $t01 (f64.add (local.get $t01) (call $hsumI32 (local.get $a01))))
      (local.set $t02 (f64.add (local.get $t02) (call $hsumI32 (local.get $a02))))
      (local.set $t03 (f64.add (local.get $t03) (call $hsumI32 (local.get $a03))))
      (local.set $t10 (f64.add (local.get $t10) (call $hsumI32 (local.get $a10))))
      (local.set $t11 (f64.add (local.get $t11) (call $hsumI32 (local.get $a11))))
      (local.set $t12 (f64.add (local.get $t12) (call $hsumI32 (local.get $a12))))
      (local.set $t13 (f64.add (local.get $t13) (call $hsumI32 (local.get $a13))))
      (br $chunks)))
    (f32.store offset=0 (local.get $y) (call $scaleQ8 (local.get $t00) (local.get $s)))
    (f32.store offset=4 (local.get $y) (call $scaleQ8 (local.get $t01) (i32.add (local.get $s) (i32.const 4))))
    (f32.store offset=8 (local.get $y) (call $scaleQ8 (local.get $t02) (i32.add (local.get $s) (i32.const 8))))
    (f32.store offset=12 (local.get $y)
      (call $scaleQ8 (local.get $t03) (i32.add (local.get $s) (i32.const 12))))
    (f32.store offset=0 (local.get $y1) (call $scaleQ8 (local.get $t10) (local.get $s)))
    (f32.store offset=4 (local.get $y1) (call $scaleQ8 (local.get $t11) (i32.add (local.get $s) (i32.const 4))))
    (f32.store offset=8 (local.get $y1) (call $scaleQ8 (local.get $t12) (i32.add (local.get $s) (i32.const 8))))
    (f32.store offset=12 (local.get $y1)
      (call $scaleQ8 (local.get $t13) (i32.add (local.get $s) (i32.const 12)))))

  ;; 1 token x 1 int8 row (the last m % 4 rows).
  (func $q1x1 (param $x i32) (param $w i32) (param $s i32) (param $y i32) (param $n i32)
    (local $k i32) (local $end i32) (local $a v128) (local $t f64)
    (block $done (loop $chunks
      (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
      (local.set $end (call $chunkEnd (local.get $k) (local.get $n)))
      (local.set $a (v128.const i32x4 0 0 0 0))
      (block $cdone (loop $inner
        (br_if $cdone (i32.ge_u (local.get $k) (local.get $end)))
        (local.set $a (i32x4.add (local.get $a) (i32x4.dot_i16x8_s
          (v128.load8x8_s (i32.add (local.get $w) (local.get $k)))
          (v128.load (i32.add (local.get $x) (i32.shl (local.get $k) (i32.const 1)))))))
        (local.set $k (i32.add (local.get $k) (i32.const 8)))
        (br $inner)))
      (local.set $t (f64.add (local.get $t) (call $hsumI32 (local.get $a))))
      (br $chunks)))
    (f32.store (local.get $y) (call $scaleQ8 (local.get $t) (local.get $s))))

  ;; matmul_q8 (see above): arguments as matmul, with x int16 rows of 2n bytes, w int8 rows of n bytes and
  ;; b the per-row scales. Rows in groups of 4; within a group, tokens in pairs then one.
  (func (export "matmul_q8") (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $T i32)
    (param $n i32) (param $m i32) (param $ys i32)
    (local $o i32) (local $t i32) (local $xb i32) (local $ysb i32) (local $wo i32) (local $so i32)
    (local $xt i32) (local $yt i32)
    (local.set $xb (i32.shl (local.get $n) (i32.const 1)))
    (local.set $ysb (i32.shl (local.get $ys) (i32.const 2)))
    (block $odone (loop $orows
      (br_if $odone (i32.gt_u (i32.add (local.get $o) (i32.const 4)) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
      (local.set $so (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $pairs
        (br_if $tdone (i32.gt_u (i32.add (local.get $t) (i32.const 2)) (local.get $T)))
        (call $q2x4 (local.get $xt) (local.get $wo) (local.get $so) (local.get $yt) (local.get $n)
          (local.get $ysb))
        (local.set $xt (i32.add (local.get $xt) (i32.shl (local.get $xb) (i32.const 1))))
        (local.set $yt (i32.add (local.get $yt) (i32.shl (local.get $ysb) (i32.const 1))))
        (local.set $t (i32.add (local.get $t) (i32.const 2)))
        (br $pairs)))
      (if (i32.lt_u (local.get $t) (local.get $T))
        (then (call $q1x4 (local.get $xt) (local.get $wo) (local.get $so) (local.get $yt) (local.get $n))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $orows)))
    (block $odone (loop $orow
      (br_if $odone (i32.ge_u (local.get $o) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
      (local.set $so (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $tokens
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $T)))
        (call $q1x1 (local.get $xt) (local.get $wo) (local.get $so) (local.get $yt) (local.get $n))
        (local.set $xt (i32.add (local.get $xt) (local.get $xb)))
        (local.set $yt (i32.add (local.get $yt) (local.get $ysb)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tokens)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $orow))))
)
