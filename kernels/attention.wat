;; The two inner products of attention for one query head, float32, WebAssembly SIMD128. Pointers are byte
;; offsets into the imported memory. ctx holds n int32 cache slots; the key / value of slot s starts at
;; k + s * row (row = bytes per cache slot), hd floats long.
;;
;; Determinism: each result is computed in one fixed order, whatever the call shape:
;;   scores[j] = q · k_j in the matmul kernels' order (kernels/matmul.wat: 4 lane sums over 4-float steps,
;;               (l0 + l1) + (l2 + l3), then the scalar tail), every product and sum rounded to float32;
;;   out[d]    = (..((0 + p_0 v_0[d]) + p_1 v_1[d]) + ..) in the order of ctx, each product and sum
;;               rounded to float32 (f32x4.mul then f32x4.add, no fused multiply-add).
;;   softmax   = float32 steps, e^x by $exp4 (kernels/exp4.wat), sums in a fixed lane order (below).
;; kernels/attention_js.ts computes the same with Math.fround, bit for bit.
(module
  (import "env" "memory" (memory 1 65536))

  ;; The fixed horizontal reduction and scalar tail of q · k: d and hdb are byte offsets of the tail
  ;; within the rows q and k.
  (func $finish (param $acc v128) (param $q i32) (param $kp i32) (param $d i32) (param $hdb i32)
    (result f32)
    (call $finishTail (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc))))
      (local.get $q) (local.get $kp) (local.get $d) (local.get $hdb)))

  ;; The cache address of key (or value) ctx[j]: k + ctx[j] * row.
  (func $slot (param $k i32) (param $ctx i32) (param $j i32) (param $row i32) (result i32)
    (i32.add (local.get $k) (i32.mul
      (i32.load (i32.add (local.get $ctx) (i32.shl (local.get $j) (i32.const 2)))) (local.get $row))))

  ;; Keys go 4 at a time: four independent add chains (one accumulator per key, each summed in the fixed
  ;; order) where one key alone waits on its single chain; then the last n % 4 keys one by one.
  (func $scores (export "scores") (param $q i32) (param $k i32) (param $ctx i32) (param $n i32) (param $row i32)
    (param $hd i32) (param $out i32)
    (local $j i32) (local $d i32) (local $hdb i32) (local $n4 i32) (local $qv v128)
    (local $k0 i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local.set $hdb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $hdb) (i32.const -16)))
    (block $qdone (loop $quads
      (br_if $qdone (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
      (local.set $k0 (call $slot (local.get $k) (local.get $ctx) (local.get $j) (local.get $row)))
      (local.set $k1 (call $slot (local.get $k) (local.get $ctx) (i32.add (local.get $j) (i32.const 1))
        (local.get $row)))
      (local.set $k2 (call $slot (local.get $k) (local.get $ctx) (i32.add (local.get $j) (i32.const 2))
        (local.get $row)))
      (local.set $k3 (call $slot (local.get $k) (local.get $ctx) (i32.add (local.get $j) (i32.const 3))
        (local.get $row)))
      (local.set $a0 (v128.const f32x4 0 0 0 0))
      (local.set $a1 (v128.const f32x4 0 0 0 0))
      (local.set $a2 (v128.const f32x4 0 0 0 0))
      (local.set $a3 (v128.const f32x4 0 0 0 0))
      (local.set $d (i32.const 0))
      (block $done (loop $main
        (br_if $done (i32.ge_u (local.get $d) (local.get $n4)))
        (local.set $qv (v128.load (i32.add (local.get $q) (local.get $d))))
        (local.set $a0 (f32x4.add (local.get $a0)
          (f32x4.mul (v128.load (i32.add (local.get $k0) (local.get $d))) (local.get $qv))))
        (local.set $a1 (f32x4.add (local.get $a1)
          (f32x4.mul (v128.load (i32.add (local.get $k1) (local.get $d))) (local.get $qv))))
        (local.set $a2 (f32x4.add (local.get $a2)
          (f32x4.mul (v128.load (i32.add (local.get $k2) (local.get $d))) (local.get $qv))))
        (local.set $a3 (f32x4.add (local.get $a3)
          (f32x4.mul (v128.load (i32.add (local.get $k3) (local.get $d))) (local.get $qv))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $main)))
      (v128.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
        (call $sum4 (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3)))
      (call $tail4 (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (local.get $q)
        (local.get $k0) (local.get $k1) (local.get $k2) (local.get $k3) (local.get $n4) (local.get $hdb))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $quads)))
    (block $jdone (loop $keys
      (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $k0 (call $slot (local.get $k) (local.get $ctx) (local.get $j) (local.get $row)))
      (local.set $a0 (v128.const f32x4 0 0 0 0))
      (local.set $d (i32.const 0))
      (block $done (loop $main
        (br_if $done (i32.ge_u (local.get $d) (local.get $n4)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
          (v128.load (i32.add (local.get $k0) (local.get $d)))
          (v128.load (i32.add (local.get $q) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $main)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2)))
        (call $finish (local.get $a0) (local.get $q) (local.get $k0) (local.get $n4) (local.get $hdb)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $keys))))

  ;; The output goes in column blocks held in registers across all n values (16 floats as 4 vectors, then
  ;; 4 floats, then single floats), so each key adds into registers instead of reloading and storing the
  ;; output row; per column the sum still runs over j in order, starting from 0.
  (func $mix (export "mix") (param $p i32) (param $v i32) (param $ctx i32) (param $n i32) (param $row i32)
    (param $hd i32) (param $out i32)
    (local $j i32) (local $vp i32) (local $d i32) (local $hdb i32) (local $n4 i32) (local $pv v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128) (local $s f32)
    (local.set $hdb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $hdb) (i32.const -16)))
    (block $bdone (loop $blocks16
      (br_if $bdone (i32.gt_u (i32.add (local.get $d) (i32.const 64)) (local.get $n4)))
      (local.set $a0 (v128.const f32x4 0 0 0 0))
      (local.set $a1 (v128.const f32x4 0 0 0 0))
      (local.set $a2 (v128.const f32x4 0 0 0 0))
      (local.set $a3 (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $jdone (loop $values
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $vp (i32.add (call $slot (local.get $v) (local.get $ctx) (local.get $j) (local.get $row))
          (local.get $d)))
        (local.set $pv (v128.load32_splat (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $a0 (f32x4.add (local.get $a0)
          (f32x4.mul (local.get $pv) (v128.load offset=0 (local.get $vp)))))
        (local.set $a1 (f32x4.add (local.get $a1)
          (f32x4.mul (local.get $pv) (v128.load offset=16 (local.get $vp)))))
        (local.set $a2 (f32x4.add (local.get $a2)
          (f32x4.mul (local.get $pv) (v128.load offset=32 (local.get $vp)))))
        (local.set $a3 (f32x4.add (local.get $a3)
          (f32x4.mul (local.get $pv) (v128.load offset=48 (local.get $vp)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $values)))
      (v128.store offset=0 (i32.add (local.get $out) (local.get $d)) (local.get $a0))
      (v128.store offset=16 (i32.add (local.get $out) (local.get $d)) (local.get $a1))
      (v128.store offset=32 (i32.add (local.get $out) (local.get $d)) (local.get $a2))
      (v128.store offset=48 (i32.add (local.get $out) (local.get $d)) (local.get $a3))
      (local.set $d (i32.add (local.get $d) (i32.const 64)))
      (br $blocks16)))
    (block $bdone (loop $blocks4
      (br_if $bdone (i32.ge_u (local.get $d) (local.get $n4)))
      (local.set $a0 (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $jdone (loop $values
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $vp (i32.add (call $slot (local.get $v) (local.get $ctx) (local.get $j) (local.get $row))
          (local.get $d)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul
          (v128.load32_splat (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))))
          (v128.load (local.get $vp)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $values)))
      (v128.store (i32.add (local.get $out) (local.get $d)) (local.get $a0))
      (local.set $d (i32.add (local.get $d) (i32.const 16)))
      (br $blocks4)))
    (block $bdone (loop $singles
      (br_if $bdone (i32.ge_u (local.get $d) (local.get $hdb)))
      (local.set $s (f32.const 0))
      (local.set $j (i32.const 0))
      (block $jdone (loop $values
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $vp (i32.add (call $slot (local.get $v) (local.get $ctx) (local.get $j) (local.get $row))
          (local.get $d)))
        (local.set $s (f32.add (local.get $s) (f32.mul
          (f32.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))))
          (f32.load (local.get $vp)))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $values)))
      (f32.store (i32.add (local.get $out) (local.get $d)) (local.get $s))
      (local.set $d (i32.add (local.get $d) (i32.const 4)))
      (br $singles))))

  ;; [sum a0, sum a1, sum a2, sum a3], each lane sum in $finish's order (l0 + l1) + (l2 + l3): the 4 x 4
  ;; transpose puts lane i of every accumulator in vector u_i, so 3 vector adds do 4 keys' sums at once.
  (func $sum4 (param $a0 v128) (param $a1 v128) (param $a2 v128) (param $a3 v128) (result v128)
    (local $t0 v128) (local $t1 v128) (local $t2 v128) (local $t3 v128)
    (local.set $t0 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a0) (local.get $a1)))
    (local.set $t1 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a0) (local.get $a1)))
    (local.set $t2 (i8x16.shuffle 0 1 2 3 16 17 18 19 4 5 6 7 20 21 22 23 (local.get $a2) (local.get $a3)))
    (local.set $t3 (i8x16.shuffle 8 9 10 11 24 25 26 27 12 13 14 15 28 29 30 31 (local.get $a2) (local.get $a3)))
    (f32x4.add
      (f32x4.add
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t0) (local.get $t2))
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t0) (local.get $t2)))
      (f32x4.add
        (i8x16.shuffle 0 1 2 3 4 5 6 7 16 17 18 19 20 21 22 23 (local.get $t1) (local.get $t3))
        (i8x16.shuffle 8 9 10 11 12 13 14 15 24 25 26 27 28 29 30 31 (local.get $t1) (local.get $t3)))))

  ;; out[j] += the scalar tail of q · k_j (bytes n4 .. hdb of the rows), in order, for the 4 keys at k0..k3.
  (func $tail4 (param $out i32) (param $q i32) (param $k0 i32) (param $k1 i32) (param $k2 i32) (param $k3 i32)
    (param $n4 i32) (param $hdb i32)
    (if (i32.lt_u (local.get $n4) (local.get $hdb)) (then
      (f32.store offset=0 (local.get $out) (call $finishTail (f32.load offset=0 (local.get $out))
        (local.get $q) (local.get $k0) (local.get $n4) (local.get $hdb)))
      (f32.store offset=4 (local.get $out) (call $finishTail (f32.load offset=4 (local.get $out))
        (local.get $q) (local.get $k1) (local.get $n4) (local.get $hdb)))
      (f32.store offset=8 (local.get $out) (call $finishTail (f32.load offset=8 (local.get $out))
        (local.get $q) (local.get $k2) (local.get $n4) (local.get $hdb)))
      (f32.store offset=12 (local.get $out) (call $finishTail (f32.load offset=12 (local.get $out))
        (local.get $q) (local.get $k3) (local.get $n4) (local.get $hdb))))))

  ;; s + the scalar tail of q · k (bytes d .. hdb), in order.
  (func $finishTail (param $s f32) (param $q i32) (param $kp i32) (param $d i32) (param $hdb i32) (result f32)
    (block $tdone (loop $tail
      (br_if $tdone (i32.ge_u (local.get $d) (local.get $hdb)))
      (local.set $s (f32.add (local.get $s) (f32.mul
        (f32.load (i32.add (local.get $kp) (local.get $d)))
        (f32.load (i32.add (local.get $q) (local.get $d))))))
      (local.set $d (i32.add (local.get $d) (i32.const 4)))
      (br $tail)))
    (local.get $s))

  ;; scores for two query heads of one kv head at once (qa, qb; outputs oa, ob): each key vector loaded
  ;; serves both, 4 keys a pass (8 independent add chains); every score in scores' order, bit for bit.
  (func $scores2 (param $qa i32) (param $qb i32) (param $k i32) (param $ctx i32) (param $n i32)
    (param $row i32) (param $hd i32) (param $oa i32) (param $ob i32)
    (local $j i32) (local $d i32) (local $hdb i32) (local $n4 i32) (local $va v128) (local $vb v128)
    (local $kv v128) (local $k0 i32) (local $k1 i32) (local $k2 i32) (local $k3 i32)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $hdb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $hdb) (i32.const -16)))
    (block $qdone (loop $quads
      (br_if $qdone (i32.gt_u (i32.add (local.get $j) (i32.const 4)) (local.get $n)))
      (local.set $k0 (call $slot (local.get $k) (local.get $ctx) (local.get $j) (local.get $row)))
      (local.set $k1 (call $slot (local.get $k) (local.get $ctx) (i32.add (local.get $j) (i32.const 1))
        (local.get $row)))
      (local.set $k2 (call $slot (local.get $k) (local.get $ctx) (i32.add (local.get $j) (i32.const 2))
        (local.get $row)))
      (local.set $k3 (call $slot (local.get $k) (local.get $ctx) (i32.add (local.get $j) (i32.const 3))
        (local.get $row)))
      (local.set $a0 (v128.const f32x4 0 0 0 0))
      (local.set $a1 (v128.const f32x4 0 0 0 0))
      (local.set $a2 (v128.const f32x4 0 0 0 0))
      (local.set $a3 (v128.const f32x4 0 0 0 0))
      (local.set $b0 (v128.const f32x4 0 0 0 0))
      (local.set $b1 (v128.const f32x4 0 0 0 0))
      (local.set $b2 (v128.const f32x4 0 0 0 0))
      (local.set $b3 (v128.const f32x4 0 0 0 0))
      (local.set $d (i32.const 0))
      (block $done (loop $main
        (br_if $done (i32.ge_u (local.get $d) (local.get $n4)))
        (local.set $va (v128.load (i32.add (local.get $qa) (local.get $d))))
        (local.set $vb (v128.load (i32.add (local.get $qb) (local.get $d))))
        (local.set $kv (v128.load (i32.add (local.get $k0) (local.get $d))))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $kv) (local.get $va))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $kv) (local.get $vb))))
        (local.set $kv (v128.load (i32.add (local.get $k1) (local.get $d))))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $kv) (local.get $va))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $kv) (local.get $vb))))
        (local.set $kv (v128.load (i32.add (local.get $k2) (local.get $d))))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $kv) (local.get $va))))
        (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $kv) (local.get $vb))))
        (local.set $kv (v128.load (i32.add (local.get $k3) (local.get $d))))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $kv) (local.get $va))))
        (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $kv) (local.get $vb))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $main)))
      (v128.store (i32.add (local.get $oa) (i32.shl (local.get $j) (i32.const 2)))
        (call $sum4 (local.get $a0) (local.get $a1) (local.get $a2) (local.get $a3)))
      (v128.store (i32.add (local.get $ob) (i32.shl (local.get $j) (i32.const 2)))
        (call $sum4 (local.get $b0) (local.get $b1) (local.get $b2) (local.get $b3)))
      (call $tail4 (i32.add (local.get $oa) (i32.shl (local.get $j) (i32.const 2))) (local.get $qa)
        (local.get $k0) (local.get $k1) (local.get $k2) (local.get $k3) (local.get $n4) (local.get $hdb))
      (call $tail4 (i32.add (local.get $ob) (i32.shl (local.get $j) (i32.const 2))) (local.get $qb)
        (local.get $k0) (local.get $k1) (local.get $k2) (local.get $k3) (local.get $n4) (local.get $hdb))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $quads)))
    ;; the last n % 4 keys, one head at a time
    (if (i32.lt_u (local.get $j) (local.get $n)) (then
      (call $scores (local.get $qa) (local.get $k)
        (i32.add (local.get $ctx) (i32.shl (local.get $j) (i32.const 2))) (i32.sub (local.get $n) (local.get $j))
        (local.get $row) (local.get $hd) (i32.add (local.get $oa) (i32.shl (local.get $j) (i32.const 2))))
      (call $scores (local.get $qb) (local.get $k)
        (i32.add (local.get $ctx) (i32.shl (local.get $j) (i32.const 2))) (i32.sub (local.get $n) (local.get $j))
        (local.get $row) (local.get $hd) (i32.add (local.get $ob) (i32.shl (local.get $j) (i32.const 2)))))))

  ;; mix for two heads of one kv head (probabilities pa, pb; outputs oa, ob): each value vector loaded
  ;; serves both; every output in mix's order (over j in ctx order, from 0), bit for bit.
  (func $mix2 (param $pa i32) (param $pb i32) (param $v i32) (param $ctx i32) (param $n i32) (param $row i32)
    (param $hd i32) (param $oa i32) (param $ob i32)
    (local $j i32) (local $vp i32) (local $d i32) (local $hdb i32) (local $n4 i32) (local $sa v128)
    (local $sb v128) (local $x v128)
    (local $a0 v128) (local $a1 v128) (local $a2 v128) (local $a3 v128)
    (local $b0 v128) (local $b1 v128) (local $b2 v128) (local $b3 v128)
    (local.set $hdb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $hdb) (i32.const -16)))
    (block $bdone (loop $blocks16
      (br_if $bdone (i32.gt_u (i32.add (local.get $d) (i32.const 64)) (local.get $n4)))
      (local.set $a0 (v128.const f32x4 0 0 0 0))
      (local.set $a1 (v128.const f32x4 0 0 0 0))
      (local.set $a2 (v128.const f32x4 0 0 0 0))
      (local.set $a3 (v128.const f32x4 0 0 0 0))
      (local.set $b0 (v128.const f32x4 0 0 0 0))
      (local.set $b1 (v128.const f32x4 0 0 0 0))
      (local.set $b2 (v128.const f32x4 0 0 0 0))
      (local.set $b3 (v128.const f32x4 0 0 0 0))
      (local.set $j (i32.const 0))
      (block $jdone (loop $values
        (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
        (local.set $vp (i32.add (call $slot (local.get $v) (local.get $ctx) (local.get $j) (local.get $row))
          (local.get $d)))
        (local.set $sa (v128.load32_splat (i32.add (local.get $pa) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $sb (v128.load32_splat (i32.add (local.get $pb) (i32.shl (local.get $j) (i32.const 2)))))
        (local.set $x (v128.load offset=0 (local.get $vp)))
        (local.set $a0 (f32x4.add (local.get $a0) (f32x4.mul (local.get $sa) (local.get $x))))
        (local.set $b0 (f32x4.add (local.get $b0) (f32x4.mul (local.get $sb) (local.get $x))))
        (local.set $x (v128.load offset=16 (local.get $vp)))
        (local.set $a1 (f32x4.add (local.get $a1) (f32x4.mul (local.get $sa) (local.get $x))))
        (local.set $b1 (f32x4.add (local.get $b1) (f32x4.mul (local.get $sb) (local.get $x))))
        (local.set $x (v128.load offset=32 (local.get $vp)))
        (local.set $a2 (f32x4.add (local.get $a2) (f32x4.mul (local.get $sa) (local.get $x))))
        (local.set $b2 (f32x4.add (local.get $b2) (f32x4.mul (local.get $sb) (local.get $x))))
        (local.set $x (v128.load offset=48 (local.get $vp)))
        (local.set $a3 (f32x4.add (local.get $a3) (f32x4.mul (local.get $sa) (local.get $x))))
        (local.set $b3 (f32x4.add (local.get $b3) (f32x4.mul (local.get $sb) (local.get $x))))
        (local.set $j (i32.add (local.get $j) (i32.const 1)))
        (br $values)))
      (v128.store offset=0 (i32.add (local.get $oa) (local.get $d)) (local.get $a0))
      (v128.store offset=16 (i32.add (local.get $oa) (local.get $d)) (local.get $a1))
      (v128.store offset=32 (i32.add (local.get $oa) (local.get $d)) (local.get $a2))
      (v128.store offset=48 (i32.add (local.get $oa) (local.get $d)) (local.get $a3))
      (v128.store offset=0 (i32.add (local.get $ob) (local.get $d)) (local.get $b0))
      (v128.store offset=16 (i32.add (local.get $ob) (local.get $d)) (local.get $b1))
      (v128.store offset=32 (i32.add (local.get $ob) (local.get $d)) (local.get $b2))
      (v128.store offset=48 (i32.add (local.get $ob) (local.get $d)) (local.get $b3))
      (local.set $d (i32.add (local.get $d) (i32.const 64)))
      (br $blocks16)))
    ;; the columns past the 16-float blocks, one head at a time (mix's own loops, from column d)
    (if (i32.lt_u (local.get $d) (local.get $hdb)) (then
      (call $mix (local.get $pa) (i32.add (local.get $v) (local.get $d)) (local.get $ctx) (local.get $n)
        (local.get $row) (i32.shr_u (i32.sub (local.get $hdb) (local.get $d)) (i32.const 2))
        (i32.add (local.get $oa) (local.get $d)))
      (call $mix (local.get $pb) (i32.add (local.get $v) (local.get $d)) (local.get $ctx) (local.get $n)
        (local.get $row) (i32.shr_u (i32.sub (local.get $hdb) (local.get $d)) (i32.const 2))
        (i32.add (local.get $ob) (local.get $d))))))
  ;; @include exp4.wat

  ;; p[j] = softmax(s * scale)[j] for j < n, float32 steps (as torch's float32 softmax): v = s * scale;
  ;; m = max v; e = e^(v - m) (4 lanes; a last partial group through the same lanes); sum = 4 lane sums over
  ;; the groups of 4, (l0 + l1) + (l2 + l3), then the tail in order; p = e / sum. p holds v, then e.
  (func $softmax (export "softmax") (param $s i32) (param $n i32) (param $scale f32) (param $p i32)
    (local $j i32) (local $n4 i32) (local $sv v128) (local $v v128) (local $m v128) (local $acc v128)
    (local $max f32) (local $sum f32) (local $e f32)
    (local.set $n4 (i32.and (local.get $n) (i32.const -4)))
    (local.set $sv (f32x4.splat (local.get $scale)))
    ;; v = s * scale, 4 at a time; the max of floats is exact, so taking it over lanes changes nothing
    (local.set $m (f32x4.splat (f32.const -inf)))
    (block $done (loop $scaled4
      (br_if $done (i32.ge_u (local.get $j) (local.get $n4)))
      (local.set $v (f32x4.mul (v128.load (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2))))
        (local.get $sv)))
      (v128.store (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $v))
      (local.set $m (f32x4.max (local.get $m) (local.get $v)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $scaled4)))
    (local.set $max (f32.max
      (f32.max (f32x4.extract_lane 0 (local.get $m)) (f32x4.extract_lane 1 (local.get $m)))
      (f32.max (f32x4.extract_lane 2 (local.get $m)) (f32x4.extract_lane 3 (local.get $m)))))
    (block $done (loop $scaled
      (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $e (f32.mul (f32.load (i32.add (local.get $s) (i32.shl (local.get $j) (i32.const 2))))
        (local.get $scale)))
      (f32.store (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $e))
      (local.set $max (f32.max (local.get $max) (local.get $e)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $scaled)))
    (local.set $m (f32x4.splat (local.get $max)))
    (local.set $j (i32.const 0))
    (block $done (loop $groups
      (br_if $done (i32.ge_u (local.get $j) (local.get $n4)))
      (local.set $v (call $exp4 (f32x4.sub (v128.load (i32.add (local.get $p) (i32.shl (local.get $j)
        (i32.const 2)))) (local.get $m))))
      (v128.store (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $v))
      (local.set $acc (f32x4.add (local.get $acc) (local.get $v)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $groups)))
    (local.set $sum (f32.add
      (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
      (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
    (block $done (loop $tail
      (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $e (f32x4.extract_lane 0 (call $exp4 (f32x4.splat (f32.sub
        (f32.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))) (local.get $max))))))
      (f32.store (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (local.get $e))
      (local.set $sum (f32.add (local.get $sum) (local.get $e)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $tail)))
    (local.set $j (i32.const 0))
    (local.set $v (f32x4.splat (local.get $sum)))
    (block $done (loop $divide
      (br_if $done (i32.ge_u (local.get $j) (local.get $n4)))
      (v128.store (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (f32x4.div
        (v128.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))) (local.get $v)))
      (local.set $j (i32.add (local.get $j) (i32.const 4)))
      (br $divide)))
    (block $done (loop $tail2
      (br_if $done (i32.ge_u (local.get $j) (local.get $n)))
      (f32.store (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))) (f32.div
        (f32.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))) (local.get $sum)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $tail2))))

  ;; One token's attention, every query head: for h < heads, out[h] = mix(softmax(scores(q[h]) * scale))
  ;; over the kv head h / group (q and out: heads x hd floats; k and v: the caches, kv head kv starting at
  ;; kv * hstride bytes, its slots row bytes apart). sc: 2n floats of scratch. Two query heads of the same
  ;; kv head go together (scores2, mix2: each key and value read once for both); the bits are those of one
  ;; head at a time.
  (func (export "attend") (param $q i32) (param $k i32) (param $v i32) (param $ctx i32) (param $n i32)
    (param $row i32) (param $hstride i32) (param $hd i32) (param $heads i32) (param $group i32)
    (param $scale f32) (param $sc i32) (param $out i32)
    (call $attend_heads (local.get $q) (local.get $k) (local.get $v) (local.get $ctx) (local.get $n)
      (local.get $row) (local.get $hstride) (local.get $hd) (i32.const 0) (local.get $heads) (local.get $group)
      (local.get $scale) (local.get $sc) (local.get $out)))

  ;; attend for the query heads h0 <= h < h1 alone, as one of the parts kernels/threads.ts runs at once
  ;; (each with its own score scratch sc): the other arguments come from the 44-byte block at desc,
  ;; i32 q, k, v, ctx, n, row, hstride, hd, group, out, then f32 scale. The signature is the matmul
  ;; kernels' (the worker threads' job slots hold 8 i32s); the last four are unused. h0 must start a kv
  ;; head's group, so that the two-head pairs are attend's and each head's bits are the same.
  (func (export "attend_job") (param $desc i32) (param $h0 i32) (param $h1 i32) (param $sc i32) (param i32)
    (param i32) (param i32) (param i32)
    (call $attend_heads
      (i32.load offset=0 (local.get $desc)) (i32.load offset=4 (local.get $desc))
      (i32.load offset=8 (local.get $desc)) (i32.load offset=12 (local.get $desc))
      (i32.load offset=16 (local.get $desc)) (i32.load offset=20 (local.get $desc))
      (i32.load offset=24 (local.get $desc)) (i32.load offset=28 (local.get $desc))
      (local.get $h0) (local.get $h1) (i32.load offset=32 (local.get $desc))
      (f32.load offset=40 (local.get $desc)) (local.get $sc) (i32.load offset=36 (local.get $desc))))

  (func $attend_heads (param $q i32) (param $k i32) (param $v i32) (param $ctx i32) (param $n i32)
    (param $row i32) (param $hstride i32) (param $hd i32) (param $h0 i32) (param $heads i32) (param $group i32)
    (param $scale f32) (param $sc i32) (param $out i32)
    (local $h i32) (local $hdb i32) (local $kv i32) (local $sc2 i32)
    (local.set $h (local.get $h0))
    (local.set $hdb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $sc2 (i32.add (local.get $sc) (i32.shl (local.get $n) (i32.const 2))))
    (block $done (loop $each
      (br_if $done (i32.ge_u (local.get $h) (local.get $heads)))
      (local.set $kv (i32.mul (i32.div_u (local.get $h) (local.get $group)) (local.get $hstride)))
      (if (i32.and
            (i32.lt_u (i32.add (local.get $h) (i32.const 1)) (local.get $heads))
            (i32.eq (i32.div_u (i32.add (local.get $h) (i32.const 1)) (local.get $group))
              (i32.div_u (local.get $h) (local.get $group))))
        (then
          (call $scores2 (i32.add (local.get $q) (i32.mul (local.get $h) (local.get $hdb)))
            (i32.add (local.get $q) (i32.mul (i32.add (local.get $h) (i32.const 1)) (local.get $hdb)))
            (i32.add (local.get $k) (local.get $kv)) (local.get $ctx) (local.get $n) (local.get $row)
            (local.get $hd) (local.get $sc) (local.get $sc2))
          (call $softmax (local.get $sc) (local.get $n) (local.get $scale) (local.get $sc))
          (call $softmax (local.get $sc2) (local.get $n) (local.get $scale) (local.get $sc2))
          (call $mix2 (local.get $sc) (local.get $sc2) (i32.add (local.get $v) (local.get $kv)) (local.get $ctx)
            (local.get $n) (local.get $row) (local.get $hd)
            (i32.add (local.get $out) (i32.mul (local.get $h) (local.get $hdb)))
            (i32.add (local.get $out) (i32.mul (i32.add (local.get $h) (i32.const 1)) (local.get $hdb))))
          (local.set $h (i32.add (local.get $h) (i32.const 2))))
        (else
          (call $scores (i32.add (local.get $q) (i32.mul (local.get $h) (local.get $hdb)))
            (i32.add (local.get $k) (local.get $kv)) (local.get $ctx) (local.get $n) (local.get $row)
            (local.get $hd) (local.get $sc))
          (call $softmax (local.get $sc) (local.get $n) (local.get $scale) (local.get $sc))
          (call $mix (local.get $sc) (i32.add (local.get $v) (local.get $kv)) (local.get $ctx) (local.get $n)
            (local.get $row) (local.get $hd) (i32.add (local.get $out) (i32.mul (local.get $h) (local.get $hdb))))
          (local.set $h (i32.add (local.get $h) (i32.const 1)))))
      (br $each))))
)
