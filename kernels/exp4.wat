;; A function spliced into kernels/matmul.wat and kernels/attention.wat by tools/build_kernels.ts at their
;; ";; @include exp4.wat" lines (one source for both modules). kernels/matmul_js.ts' expF32 is its twin.
  ;; e^x for 4 float32 lanes (Cephes' expf): x clamped to [-87, 88] (so 2^k stays a normal number; e^-87
  ;; stands in for anything smaller and e^88 for anything larger, which moves silu by less than 1e-36);
  ;; k = floor(x log2(e) + 1/2); r = (x - k C1) - k C2 with C1 + C2 = ln 2 (C1 short, so k C1 is exact);
  ;; e^r = ((((((p0 r + p1) r + p2) r + p3) r + p4) r + p5) r^2 + r) + 1; times 2^k from its bits. Every
  ;; step rounds to float32 (mul, then add: no fused multiply-add), as kernels/matmul_js.ts' twin does.
  (func $exp4 (param $x v128) (result v128)
    (local $k v128) (local $r v128) (local $p v128)
    (local.set $x (f32x4.max (f32x4.min (local.get $x) (v128.const f32x4 88 88 88 88))
      (v128.const f32x4 -87 -87 -87 -87)))
    (local.set $k (f32x4.floor (f32x4.add (f32x4.mul (local.get $x)
      (v128.const f32x4 1.4426950216293335 1.4426950216293335 1.4426950216293335 1.4426950216293335))
      (v128.const f32x4 0.5 0.5 0.5 0.5))))
    (local.set $r (f32x4.sub
      (f32x4.sub (local.get $x)
        (f32x4.mul (local.get $k) (v128.const f32x4 0.693359375 0.693359375 0.693359375 0.693359375)))
      (f32x4.mul (local.get $k) (v128.const f32x4 -0.00021219444170128554 -0.00021219444170128554
        -0.00021219444170128554 -0.00021219444170128554))))
    (local.set $p (v128.const f32x4 0.00019875691214110702 0.00019875691214110702 0.00019875691214110702
      0.00019875691214110702))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.001398199936375022
      0.001398199936375022 0.001398199936375022 0.001398199936375022)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.008333452045917511
      0.008333452045917511 0.008333452045917511 0.008333452045917511)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.04166579619050026
      0.04166579619050026 0.04166579619050026 0.04166579619050026)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.1666666567325592
      0.1666666567325592 0.1666666567325592 0.1666666567325592)))
    (local.set $p (f32x4.add (f32x4.mul (local.get $p) (local.get $r)) (v128.const f32x4 0.5 0.5 0.5 0.5)))
    (local.set $p (f32x4.add (f32x4.add (f32x4.mul (local.get $p) (f32x4.mul (local.get $r) (local.get $r)))
      (local.get $r)) (v128.const f32x4 1 1 1 1)))
    (f32x4.mul (local.get $p) (i32x4.shl (i32x4.add (i32x4.trunc_sat_f32x4_s (local.get $k))
      (v128.const i32x4 127 127 127 127)) (i32.const 23))))
