# PLACEHOLDER: the register replaces this package before release.
