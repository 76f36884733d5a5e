// oneDNN picks AMX kernels for bf16/int8 when the CPU advertises AMX. Some VMs advertise AMX but
// do not let a process use it, and the first AMX instruction kills the process with SIGILL.
// Before oneDNN's first use we try AMX in a throwaway child process and cap oneDNN's ISA below
// AMX unless that child survives. A user's ONEDNN_MAX_CPU_ISA always wins.
#include "backend/cpu/onednn_isa.hpp"

#include <cpuid.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <mutex>

#include <dnnl.hpp>

namespace upres {
namespace {

bool cpu_advertises_amx() {
  unsigned eax, ebx, ecx, edx;
  if (!__get_cpuid_count(7, 0, &eax, &ebx, &ecx, &edx)) return false;
  return (edx >> 24) & 1;  // AMX-TILE
}

bool amx_runs_in_child() {
  pid_t pid = fork();
  if (pid < 0) return false;
  if (pid == 0) {
    constexpr long arch_req_xcomp_perm = 0x1023;
    constexpr long xfeature_xtiledata = 18;
    if (syscall(SYS_arch_prctl, arch_req_xcomp_perm, xfeature_xtiledata) != 0) _exit(1);
    asm volatile(".byte 0xc4, 0xe2, 0x78, 0x49, 0xc0" ::: "memory");  // tilerelease
    _exit(0);
  }
  int status = 0;
  if (waitpid(pid, &status, 0) != pid) return false;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

}  // namespace

bool configure_onednn_isa() {
  static std::once_flag once;
  static bool capped = false;
  std::call_once(once, [] {
    if (std::getenv("ONEDNN_MAX_CPU_ISA") || std::getenv("DNNL_MAX_CPU_ISA")) return;
    if (cpu_advertises_amx() && !amx_runs_in_child()) {
      dnnl::set_max_cpu_isa(dnnl::cpu_isa::avx512_core_bf16);
      capped = true;
    }
  });
  return capped;
}

bool onednn_has_fast_int8() {
  configure_onednn_isa();
  switch (dnnl::get_effective_cpu_isa()) {
    case dnnl::cpu_isa::avx512_core_vnni:
    case dnnl::cpu_isa::avx512_core_bf16:
    case dnnl::cpu_isa::avx512_core_amx:
    case dnnl::cpu_isa::avx2_vnni: return true;
    default: return false;
  }
}

}  // namespace upres
