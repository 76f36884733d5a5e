#pragma once

namespace upres {

// Call before creating any oneDNN primitive. Returns true when the ISA was capped below AMX.
bool configure_onednn_isa();

}  // namespace upres
