;; Int8 weights against 7-bit activation codes, WebAssembly SIMD128 + relaxed SIMD (kernels/q7.ts): the LM
;; head screen's approximate logits (backends/cpu/head_screen.ts). Pointers are byte offsets into the
;; imported memory.
;;
;; matmul_q7(x, w, b, y, T, n, m, ys): x holds T rows of n unsigned codes u in [0, 127] (u = q + 64 for an
;; activation code q in [-63, 63]; 0 in the padding), w m rows of n int8 codes in [-127, 127] (0 in the
;; padding), b m pairs (float32 scale, float32 row sum of the codes). n is a multiple of 16.
;;   y[t * ys + o] = f32(f64(w[o, :] · u[t, :] - 64 · rowsum[o]) · f64(scale[o]))
;; which is f32(exact(w · q) · scale): the integer dot product is exact, so any tiling, and kernels/q7.ts'
;; scalar twin, give the same bits.
;;
;; Why i32x4.relaxed_dot_i8x16_i7x16_add_s is exact here: its second operand's lanes are in [0, 127] (the
;; "i7" range every implementation agrees on), and where it is lowered through 16-bit pair sums
;; (pmaddubsw) a pair is at most 2 · 127 · 127 = 32258 in magnitude, below the saturation point. Each i32
;; lane gains at most 4 · 127 · 127 per 16 inputs, so n <= 65536 keeps every lane and their sum below 2^31
;; (kernels/mod.ts checks n).
(module
  (import "env" "memory" (memory 1 65536))

  ;; y = f32(f64(sum of acc's lanes - 64 · rowsum) · f64(scale)), with (scale, rowsum) at address s.
  (func $finish (param $acc v128) (param $s i32) (result f32)
    (f32.demote_f64 (f64.mul
      (f64.sub
        (f64.convert_i32_s (i32.add
          (i32.add (i32x4.extract_lane 0 (local.get $acc)) (i32x4.extract_lane 1 (local.get $acc)))
          (i32.add (i32x4.extract_lane 2 (local.get $acc)) (i32x4.extract_lane 3 (local.get $acc)))))
        (f64.mul (f64.promote_f32 (f32.load offset=4 (local.get $s))) (f64.const 64)))
      (f64.promote_f32 (f32.load (local.get $s))))))

  ;; 2 tokens x 4 rows: each weight vector loaded serves both tokens (8 accumulators). x: token 0's codes
  ;; (token 1's follow n bytes on), w: row 0 (rows n bytes apart), s: row 0's (scale, rowsum), y: token
  ;; 0's output for row 0, ysb: bytes between tokens' outputs.
  (func $t2x4 (param $x i32) (param $w i32) (param $s i32) (param $y i32) (param $n i32) (param $ysb i32)
    (local $k i32) (local $x1 i32) (local $w1 i32) (local $w2 i32) (local $w3 i32) (local $y1 i32)
    (local $u0 v128) (local $u1 v128) (local $wv v128)
    (local $a00 v128) (local $a01 v128) (local $a02 v128) (local $a03 v128)
    (local $a10 v128) (local $a11 v128) (local $a12 v128) (local $a13 v128)
    (local.set $x1 (i32.add (local.get $x) (local.get $n)))
    (local.set $w1 (i32.add (local.get $w) (local.get $n)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $n)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $n)))
    (local.set $y1 (i32.add (local.get $y) (local.get $ysb)))
    (block $done (loop $inner
      (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
      (local.set $u0 (v128.load (i32.add (local.get $x) (local.get $k))))
      (local.set $u1 (v128.load (i32.add (local.get $x1) (local.get $k))))
      (local.set $wv (v128.load (i32.add (local.get $w) (local.get $k))))
      (local.set $a00 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u0) (local.get $a00)))
      (local.set $a10 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u1) (local.get $a10)))
      (local.set $wv (v128.load (i32.add (local.get $w1) (local.get $k))))
      (local.set $a01 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u0) (local.get $a01)))
      (local.set $a11 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u1) (local.get $a11)))
      (local.set $wv (v128.load (i32.add (local.get $w2) (local.get $k))))
      (local.set $a02 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u0) (local.get $a02)))
      (local.set $a12 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u1) (local.get $a12)))
      (local.set $wv (v128.load (i32.add (local.get $w3) (local.get $k))))
      (local.set $a03 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u0) (local.get $a03)))
      (local.set $a13 (i32x4.relaxed_dot_i8x16_i7x16_add_s (local.get $wv) (local.get $u1) (local.get $a13)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $inner)))
    (f32.store offset=0 (local.get $y) (call $finish (local.get $a00) (local.get $s)))
    (f32.store offset=4 (local.get $y) (call $finish (local.get $a01) (i32.add (local.get $s) (i32.const 8))))
    (f32.store offset=8 (local.get $y) (call $finish (local.get $a02) (i32.add (local.get $s) (i32.const 16))))
    (f32.store offset=12 (local.get $y) (call $finish (local.get $a03) (i32.add (local.get $s) (i32.const 24))))
    (f32.store offset=0 (local.get $y1) (call $finish (local.get $a10) (local.get $s)))
    (f32.store offset=4 (local.get $y1) (call $finish (local.get $a11) (i32.add (local.get $s) (i32.const 8))))
    (f32.store offset=8 (local.get $y1) (call $finish (local.get $a12) (i32.add (local.get $s) (i32.const 16))))
    (f32.store offset=12 (local.get $y1)
      (call $finish (local.get $a13) (i32.add (local.get $s) (i32.const 24)))))

  ;; 1 token x 4 rows (arguments as $t2x4).
  (func $t1x4 (param $x i32) (param $w i32) (param $s i32) (param $y i32) (param $n i32)
    (local $k i32) (local $w1 i32) (local $w2 i32) (local $w3 i32) (local $u v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $w1 (i32.add (local.get $w) (local.get $n)))
    (local.set $w2 (i32.add (local.get $w1) (local.get $n)))
    (local.set $w3 (i32.add (local.get $w2) (local.get $n)))
    (block $done (loop $inner
      (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
      (local.set $u (v128.load (i32.add (local.get $x) (local.get $k))))
      (local.set $a0 (i32x4.relaxed_dot_i8x16_i7x16_add_s
        (v128.load (i32.add (local.get $w) (local.get $k))) (local.get $u) (local.get $a0)))
      (local.set $a1 (i32x4.relaxed_dot_i8x16_i7x16_add_s
        (v128.load (i32.add (local.get $w1) (local.get $k))) (local.get $u) (local.get $a1)))
      (local.set $a2 (i32x4.relaxed_dot_i8x16_i7x16_add_s
        (v128.load (i32.add (local.get $w2) (local.get $k))) (local.get $u) (local.get $a2)))
      (local.set $a3 (i32x4.relaxed_dot_i8x16_i7x16_add_s
        (v128.load (i32.add (local.get $w3) (local.get $k))) (local.get $u) (local.get $a3)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $inner)))
    (f32.store offset=0 (local.get $y) (call $finish (local.get $a0) (local.get $s)))
    (f32.store offset=4 (local.get $y) (call $finish (local.get $a1) (i32.add (local.get $s) (i32.const 8))))
    (f32.store offset=8 (local.get $y) (call $finish (local.get $a2) (i32.add (local.get $s) (i32.const 16))))
    (f32.store offset=12 (local.get $y) (call $finish (local.get $a3) (i32.add (local.get $s) (i32.const 24)))))

  ;; 1 token x 1 row (the last m % 4 rows).
  (func $t1x1 (param $x i32) (param $w i32) (param $s i32) (param $y i32) (param $n i32)
    (local $k i32) (local $a v128)
    (block $done (loop $inner
      (br_if $done (i32.ge_u (local.get $k) (local.get $n)))
      (local.set $a (i32x4.relaxed_dot_i8x16_i7x16_add_s
        (v128.load (i32.add (local.get $w) (local.get $k)))
        (v128.load (i32.add (local.get $x) (local.get $k))) (local.get $a)))
      (local.set $k (i32.add (local.get $k) (i32.const 16)))
      (br $inner)))
    (f32.store (local.get $y) (call $finish (local.get $a) (local.get $s))))

  ;; Rows in groups of 4 (kept in L1 while every token pair passes over them), tokens in pairs then one;
  ;; then the last m % 4 rows one by one. The signature is the matmul kernels' (kernels/threads.ts).
  (func (export "matmul_q7") (param $x i32) (param $w i32) (param $b i32) (param $y i32) (param $T i32)
    (param $n i32) (param $m i32) (param $ys i32)
    (local $o i32) (local $t i32) (local $ysb i32) (local $wo i32) (local $so i32) (local $xt i32) (local $yt i32)
    (local.set $ysb (i32.shl (local.get $ys) (i32.const 2)))
    (block $odone (loop $orows
      (br_if $odone (i32.gt_u (i32.add (local.get $o) (i32.const 4)) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
      (local.set $so (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 3))))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $pairs
        (br_if $tdone (i32.gt_u (i32.add (local.get $t) (i32.const 2)) (local.get $T)))
        (call $t2x4 (local.get $xt) (local.get $wo) (local.get $so) (local.get $yt) (local.get $n)
          (local.get $ysb))
        (local.set $xt (i32.add (local.get $xt) (i32.shl (local.get $n) (i32.const 1))))
        (local.set $yt (i32.add (local.get $yt) (i32.shl (local.get $ysb) (i32.const 1))))
        (local.set $t (i32.add (local.get $t) (i32.const 2)))
        (br $pairs)))
      (if (i32.lt_u (local.get $t) (local.get $T))
        (then (call $t1x4 (local.get $xt) (local.get $wo) (local.get $so) (local.get $yt) (local.get $n))))
      (local.set $o (i32.add (local.get $o) (i32.const 4)))
      (br $orows)))
    (block $odone (loop $orow
      (br_if $odone (i32.ge_u (local.get $o) (local.get $m)))
      (local.set $wo (i32.add (local.get $w) (i32.mul (local.get $o) (local.get $n))))
      (local.set $so (i32.add (local.get $b) (i32.shl (local.get $o) (i32.const 3))))
      (local.set $xt (local.get $x))
      (local.set $yt (i32.add (local.get $y) (i32.shl (local.get $o) (i32.const 2))))
      (local.set $t (i32.const 0))
      (block $tdone (loop $tokens
        (br_if $tdone (i32.ge_u (local.get $t) (local.get $T)))
        (call $t1x1 (local.get $xt) (local.get $wo) (local.get $so) (local.get $yt) (local.get $n))
        (local.set $xt (i32.add (local.get $xt) (local.get $n)))
        (local.set $yt (i32.add (local.get $yt) (local.get $ysb)))
        (local.set $t (i32.add (local.get $t) (i32.const 1)))
        (br $tokens)))
      (local.set $o (i32.add (local.get $o) (i32.const 1)))
      (br $orow))))
)
