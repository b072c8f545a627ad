;; The two inner products of attention for one query head, float32, WebAssembly SIMD128. Pointers are byte
;; offsets into the imported memory. ctx holds n int32 cache slots; the key / value of slot s starts at
;; k + s * row (row = bytes per cache slot), hd floats long.
;;
;; Determinism: each result is computed in one fixed order, whatever the call shape:
;;   scores[j] = q · k_j in the matmul kernels' order (kernels/matmul.wat: 4 lane sums over 4-float steps,
;;               (l0 + l1) + (l2 + l3), then the scalar tail), every product and sum rounded to float32;
;;   out[d]    = (..((0 + p_0 v_0[d]) + p_1 v_1[d]) + ..) in the order of ctx, each product and sum
;;               rounded to float32 (f32x4.mul then f32x4.add, no fused multiply-add).
;; kernels/attention_js.ts computes the same with Math.fround, bit for bit.
(module
  (import "env" "memory" (memory 1 65536))

  (func (export "scores") (param $q i32) (param $k i32) (param $ctx i32) (param $n i32) (param $row i32)
    (param $hd i32) (param $out i32)
    (local $j i32) (local $kp i32) (local $d i32) (local $hdb i32) (local $n4 i32) (local $acc v128)
    (local $s f32)
    (local.set $hdb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $hdb) (i32.const -16)))
    (block $jdone (loop $keys
      (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $kp (i32.add (local.get $k) (i32.mul
        (i32.load (i32.add (local.get $ctx) (i32.shl (local.get $j) (i32.const 2)))) (local.get $row))))
      (local.set $acc (v128.const f32x4 0 0 0 0))
      (local.set $d (i32.const 0))
      (block $done (loop $main
        (br_if $done (i32.ge_u (local.get $d) (local.get $n4)))
        (local.set $acc (f32x4.add (local.get $acc) (f32x4.mul
          (v128.load (i32.add (local.get $kp) (local.get $d)))
          (v128.load (i32.add (local.get $q) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $main)))
      (local.set $s (f32.add
        (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
        (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
      (block $tdone (loop $tail
        (br_if $tdone (i32.ge_u (local.get $d) (local.get $hdb)))
        (local.set $s (f32.add (local.get $s) (f32.mul
          (f32.load (i32.add (local.get $kp) (local.get $d)))
          (f32.load (i32.add (local.get $q) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $tail)))
      (f32.store (i32.add (local.get $out) (i32.shl (local.get $j) (i32.const 2))) (local.get $s))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $keys))))

  (func (export "mix") (param $p i32) (param $v i32) (param $ctx i32) (param $n i32) (param $row i32)
    (param $hd i32) (param $out i32)
    (local $j i32) (local $vp i32) (local $d i32) (local $hdb i32) (local $n4 i32) (local $pj f32)
    (local $pv v128)
    (local.set $hdb (i32.shl (local.get $hd) (i32.const 2)))
    (local.set $n4 (i32.and (local.get $hdb) (i32.const -16)))
    (block $zdone (loop $zero
      (br_if $zdone (i32.ge_u (local.get $d) (local.get $hdb)))
      (f32.store (i32.add (local.get $out) (local.get $d)) (f32.const 0))
      (local.set $d (i32.add (local.get $d) (i32.const 4)))
      (br $zero)))
    (block $jdone (loop $values
      (br_if $jdone (i32.ge_u (local.get $j) (local.get $n)))
      (local.set $vp (i32.add (local.get $v) (i32.mul
        (i32.load (i32.add (local.get $ctx) (i32.shl (local.get $j) (i32.const 2)))) (local.get $row))))
      (local.set $pj (f32.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2)))))
      (local.set $pv (f32x4.splat (local.get $pj)))
      (local.set $d (i32.const 0))
      (block $done (loop $main
        (br_if $done (i32.ge_u (local.get $d) (local.get $n4)))
        (v128.store (i32.add (local.get $out) (local.get $d)) (f32x4.add
          (v128.load (i32.add (local.get $out) (local.get $d)))
          (f32x4.mul (local.get $pv) (v128.load (i32.add (local.get $vp) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 16)))
        (br $main)))
      (block $tdone (loop $tail
        (br_if $tdone (i32.ge_u (local.get $d) (local.get $hdb)))
        (f32.store (i32.add (local.get $out) (local.get $d)) (f32.add
          (f32.load (i32.add (local.get $out) (local.get $d)))
          (f32.mul (local.get $pj) (f32.load (i32.add (local.get $vp) (local.get $d))))))
        (local.set $d (i32.add (local.get $d) (i32.const 4)))
        (br $tail)))
      (local.set $j (i32.add (local.get $j) (i32.const 1)))
      (br $values)))))
