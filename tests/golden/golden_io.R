# Shared helpers of the golden scripts (sourced, not run by itself: `make golden` runs
# every tests/golden/*.R except this one). Writes CSV with 17 significant digits and a
# header naming R, the packages and the exact call.
golden_dir <- function() {
  args <- commandArgs(trailingOnly = FALSE)
  f <- sub("^--file=", "", args[grep("^--file=", args)])
  if (length(f)) dirname(normalizePath(f)) else "tests/golden"
}
versions <- function(pkgs) {
  paste0("# ", R.version.string, "; ",
         paste(sprintf("%s %s", pkgs, sapply(pkgs, function(p) as.character(packageVersion(p)))),
               collapse = "; "))
}
write_golden <- function(df, name, call, pkgs) {
  path <- file.path(golden_dir(), name)
  num <- vapply(df, is.numeric, logical(1))
  df[num] <- lapply(df[num], function(x) ifelse(is.na(x), "NA", sprintf("%.17g", x)))
  con <- file(path, "w")
  writeLines(c(versions(pkgs), paste0("# ", strsplit(call, "\n")[[1]])), con)
  write.csv(df, con, row.names = FALSE, quote = FALSE)
  close(con)
  cat("wrote", path, "\n")
}
