#!/bin/sh
# Checks module objects: each must carry a .modinfo section with the abi=
# entry of kernel/modabi/src/modinfo.rs (ABI_ENTRY) and
# its name, define __module_probe, and leave undefined only the kernel's
# services (modabi::kernel_services! and LIBC_EXPORTS in
# kernel/modabi/src/lib.rs) and the exports of the modules
# it declares as dependencies.
#
#   check-objects.sh [-q] OBJ_OR_LIB.a...
#
# -q prints only problems.
# A staticlib archive stands for its own member (compiler-builtins members
# are ignored). Dependencies are looked up among the other arguments.
set -eu
quiet=
if [ "${1:-}" = -q ]; then quiet=1; shift; fi
here=$(dirname "$0")
abi="$here/../kernel/modabi/src/lib.rs"
# The abi= entry, as kernel/modabi/src/modinfo.rs defines it (ABI_ENTRY).
abi_entry=$(sed -n 's/^pub const ABI_ENTRY: &str = "\(abi=[0-9]*\)\\0";$/\1/p' "$here/../kernel/modabi/src/modinfo.rs")
[ -n "$abi_entry" ] || { echo "check-objects: no ABI_ENTRY found in kernel/modabi/src/modinfo.rs" >&2; exit 1; }
services="$(sed -n '/macro_rules! kernel_services/,/^}/p' "$abi" | sed -n 's/^ *fn \(kapi_[a-z_]*\)(.*/\1/p')
$(sed -n '/LIBC_EXPORTS/p' "$abi" | grep -o '"[a-z_]*"' | tr -d '"')"
[ -n "$services" ] || { echo "check-objects: no kernel services found in $abi" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# obj_of FILE: path of the module object for FILE (extracting archives).
obj_of() {
    case "$1" in
    *.a)
        member=$(ar t "$1" | grep -v compiler_builtins | grep '\.o$' | head -n 1)
        out="$tmp/$(basename "$1" .a).o"
        ar p "$1" "$member" >"$out"
        echo "$out"
        ;;
    *) echo "$1" ;;
    esac
}

modinfo() { readelf -p .modinfo "$1" 2>/dev/null | sed -n 's/^ *\[ *[0-9a-f]*\] *//p'; }

for f in "$@"; do
    o=$(obj_of "$f")
    modinfo "$o" >"$o.modinfo"
    name=$(sed -n 's/^name=//p' "$o.modinfo")
    echo "$o" >"$tmp/by-name.$name"
done

status=0
for f in "$@"; do
    o=$(obj_of "$f")
    info="$o.modinfo"
    name=$(sed -n 's/^name=//p' "$info")
    if ! grep -qx "$abi_entry" "$info" || [ -z "$name" ]; then
        echo "$f: no valid .modinfo ($abi_entry, name=)"; status=1; continue
    fi
    allowed="$services"
    for dep in $(sed -n 's/^depends=//p' "$info"); do
        if [ ! -f "$tmp/by-name.$dep" ]; then
            echo "$name: dependency $dep not among the checked objects"; status=1; continue
        fi
        allowed="$allowed $(sed -n 's/^export=//p' "$(cat "$tmp/by-name.$dep").modinfo")"
    done
    syms=$(readelf -sW "$o" | awk '$5=="GLOBAL" || $5=="WEAK" {print $7, $8}')
    undef=$(echo "$syms" | awk '$1=="UND" {print $2}' | sort -u)
    defined=$(echo "$syms" | awk '$1!="UND" && $2!="" {print $2}' | sort -u)
    bad=""
    for s in $undef; do
        echo " $allowed " | tr ' ' '\n' | grep -qx "$s" || bad="$bad $s"
    done
    expected="__module_probe __module_selftest $(sed -n 's/^export=//p' "$info")"
    extra=""
    for s in $defined; do
        echo " $expected " | tr ' ' '\n' | grep -qx "$s" || extra="$extra $s"
    done
    echo "$defined" | grep -qx __module_probe || { echo "$name: no __module_probe"; status=1; }
    if [ -n "$bad" ]; then echo "$name: unexpected undefined symbols:$bad"; status=1; fi
    if [ -n "$extra" ]; then echo "$name: unexpected global definitions:$extra"; status=1; fi
    [ -n "$quiet" ] || printf '%-16s ok  undefined: %s\n' "$name" "$(echo $undef)"
done
exit $status
