"""What scripts/split-text-sections and scripts/compare-call-graphs read from a disassembly:
LLVM's objdump (GNU objdump takes minutes on the standard library's Swift.o, with its 26,000
sections; LLVM's seconds), its instruction lines, and where an instruction refers to.
"""
import os
import re
import shutil
import sys

# "  1234:  \tcallq\t0x5678 <name+0x10>": address, mnemonic, operands.
INSTRUCTION = re.compile(r"^\s*([0-9a-f]+):\s*\t(\S+)\s*(.*)$")
# A relocation printed under its instruction by -r.
RELOCATION = re.compile(r"^\s*[0-9a-f]+:\s+R_X86_64_")
_DIRECT = re.compile(r"0x([0-9a-f]+)\b")
_RIP = re.compile(r"# 0x([0-9a-f]+)\b")


def llvm_objdump():
    """The path of llvm-objdump: on PATH, or beside swiftc (the Swift toolchain ships one)."""
    found = shutil.which("llvm-objdump")
    if not found and shutil.which("swiftc"):
        beside = os.path.join(os.path.dirname(os.path.realpath(shutil.which("swiftc"))), "llvm-objdump")
        found = beside if os.path.exists(beside) else None
    if not found:
        sys.exit(f"{os.path.basename(sys.argv[0])}: llvm-objdump not found (the Swift toolchain has one beside swiftc)")
    return found


def target(mnemonic, operands):
    """The address an instruction refers to: a direct call's or jump's destination, or a
    rip-relative operand's address; None for anything else."""
    m = _DIRECT.match(operands) if mnemonic.startswith(("j", "call")) else None
    m = m or _RIP.search(operands)
    return int(m.group(1), 16) if m else None
