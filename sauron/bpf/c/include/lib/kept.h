/* Maps kept across builds: the counters, session state, classification
 * rules and settings. A build that replaces a running data path of the same
 * map geometry is compiled with SAURON_KEPT_MAPS naming a folder where the
 * running build's maps are pinned; bcc then opens each of these maps there
 * instead of creating it, so the new programs count on in the same maps and
 * no frame goes uncounted across the upgrade. Without it every build has
 * maps of its own. Scratch maps and program arrays are never kept: they
 * belong to one build's programs. */
#ifndef SAURON_LIB_KEPT_H
#define SAURON_LIB_KEPT_H

/* clang-format off */
#ifdef SAURON_KEPT_MAPS
#define SAURON_KEPT_TABLE(type, key, leaf, name, entries, flags) \
	BPF_F_TABLE(type ":" SAURON_KEPT_MAPS "/" #name, key, leaf, name, entries, flags)
#else
#define SAURON_KEPT_TABLE(type, key, leaf, name, entries, flags) \
	BPF_F_TABLE(type, key, leaf, name, entries, flags)
#endif
/* clang-format on */

#endif
