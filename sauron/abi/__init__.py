"""The view of sauron/bpf/c/include/sauron_shared.h both sides share: struct
layouts, enums, sizes, histogram geometry. The bottom layer."""
