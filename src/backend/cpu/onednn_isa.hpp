#pragma once

namespace upres {

// Call before creating any oneDNN primitive. Returns true when the ISA was capped below AMX.
bool configure_onednn_isa();

// Whether oneDNN's int8 convolutions run on integer dot-product instructions here (AVX-512 VNNI,
// AVX-VNNI or AMX), which is what makes them faster than float32.
bool onednn_has_fast_int8();

}  // namespace upres
