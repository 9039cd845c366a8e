# Competing risks goldens: cmprsk::cuminc (CIF, variance, Gray's test) and cmprsk::crr
# (Fine-Gray) on survival::mgus2 (public) and on the twin (twin_analysis.csv, written by
# tests/golden/twin_frame.py from the demo; booleans as 0/1).
# Run by `make golden` (Rscript tests/golden/competing.R); needs survival and cmprsk.
suppressPackageStartupMessages({library(survival); library(cmprsk)})
source(file.path(local({a <- commandArgs(FALSE); dirname(sub("^--file=", "", a[grep("^--file=", a)]))}),
                 "golden_io.R"))
pk <- c("survival", "cmprsk")
dir <- golden_dir()

# --- inputs -----------------------------------------------------------------------
# mgus2: progression to plasma-cell malignancy (1) vs death without it (2), 0 censored,
# as in survival's "compete" vignette; time in months.
m <- survival::mgus2
mg <- data.frame(id = m$id, time = ifelse(m$pstat == 0, m$futime, m$ptime),
                 status = ifelse(m$pstat == 0, 2 * m$death, 1), sex = as.character(m$sex),
                 age = m$age, agegroup = ifelse(m$age >= 70, "70plus", "under70"))
write_golden(mg, "data_mgus2.csv",
             "survival::mgus2: time = ifelse(pstat == 0, futime, ptime); status = ifelse(pstat == 0, 2 * death, 1)", pk)
tw <- read.csv(file.path(dir, "twin_analysis.csv"), stringsAsFactors = FALSE)
tw <- tw[!is.na(tw$lfs_cause), ]
tw$bm_blasts_ge20 <- as.numeric(tw$bm_blasts_pct >= 20)

# --- cuminc -----------------------------------------------------------------------
loglog <- function(est, var, z = qnorm(0.975)) {
  k <- exp(z * sqrt(var) / (est * log(est)))
  ok <- est > 0 & est < 1
  list(lower = ifelse(ok, est^k, NA), upper = ifelse(ok, est^(1 / k), NA))
}
curves <- function(fit, dataset, call) {
  out <- NULL
  for (nm in setdiff(names(fit), "Tests")) {
    cur <- fit[[nm]]
    keep <- !duplicated(cur$time, fromLast = TRUE)  # the value after each jump
    b <- loglog(cur$est[keep], cur$var[keep])
    out <- rbind(out, data.frame(dataset = dataset, call = call, curve = nm,
                                 time = cur$time[keep], estimate = cur$est[keep],
                                 variance = cur$var[keep], lower = b$lower, upper = b$upper))
  }
  out
}
tests <- function(fit, dataset, call) {
  t <- fit$Tests
  data.frame(dataset = dataset, call = call, cause = rownames(t), statistic = t[, "stat"],
             p_value = t[, "pv"], dof = t[, "df"])
}
runs <- list(
  list("mgus2", "sex", quote(cuminc(mg$time, mg$status, mg$sex))),
  list("mgus2", "sex|strata=agegroup", quote(cuminc(mg$time, mg$status, mg$sex, strata = mg$agegroup))),
  list("mgus2", "sex|rho=1", quote(cuminc(mg$time, mg$status, mg$sex, rho = 1))),
  list("twin", "crs_any", quote(cuminc(tw$lfs_months, tw$lfs_cause, tw$crs_any, cencode = "censored"))),
  list("twin", "tox_group", quote(cuminc(tw$lfs_months, tw$lfs_cause, tw$tox_group, cencode = "censored"))),
  list("twin", "site_id", quote(cuminc(tw$lfs_months, tw$lfs_cause, tw$site_id, cencode = "censored"))),
  list("twin", "all", quote(cuminc(tw$lfs_months, tw$lfs_cause, cencode = "censored"))))
cv <- NULL; ts <- NULL; calls <- NULL
for (r in runs) {
  fit <- eval(r[[3]])
  cv <- rbind(cv, curves(fit, r[[1]], r[[2]]))
  if (!is.null(fit$Tests)) ts <- rbind(ts, tests(fit, r[[1]], r[[2]]))
  calls <- c(calls, paste(r[[1]], r[[2]], ":", deparse(r[[3]], width.cutoff = 500L)))
}
note <- paste(c(calls, "lower/upper: est^exp(+-qnorm(0.975) * sqrt(var) / (est * log(est))) from cuminc's var"),
              collapse = "\n")
write_golden(cv, "cuminc_curves.csv", note, pk)
write_golden(ts, "cuminc_tests.csv", note, pk)

# --- crr ----------------------------------------------------------------------------
crr_rows <- function(fit, dataset, call) {
  se <- sqrt(diag(fit$var))
  data.frame(dataset = dataset, call = call, term = names(fit$coef), coef = unname(fit$coef),
             se = se, p_value = 2 * (1 - pnorm(abs(fit$coef) / se)),
             converged = fit$converged, loglik = fit$loglik)
}
tw_x <- model.matrix(~ bm_blasts_ge20 + steroids + tocilizumab + relevel(factor(tox_group), "none"), tw)[, -1]
colnames(tw_x) <- c("bm_blasts_ge20", "steroids", "tocilizumab", "tox_group:grade3plus", "tox_group:other")
mg_x <- cbind(age = mg$age, male = as.numeric(mg$sex == "M"))
fits <- list(
  list("mgus2", "event=1", quote(crr(mg$time, mg$status, mg_x, failcode = 1, cencode = 0))),
  list("mgus2", "event=2", quote(crr(mg$time, mg$status, mg_x, failcode = 2, cencode = 0))),
  list("twin", "event=relapse", quote(crr(tw$lfs_months, tw$lfs_cause, tw_x, failcode = "relapse", cencode = "censored"))),
  list("twin", "event=nrm", quote(crr(tw$lfs_months, tw$lfs_cause, tw_x, failcode = "nrm", cencode = "censored"))),
  list("twin", "event=relapse|crs_any", quote(crr(tw$lfs_months, tw$lfs_cause, tw$crs_any, failcode = "relapse", cencode = "censored"))))
out <- NULL; calls <- NULL
for (f in fits) {
  fit <- eval(f[[3]])
  rows <- crr_rows(fit, f[[1]], f[[2]])
  if (f[[2]] == "event=relapse|crs_any") rows$term <- "crs_any"
  out <- rbind(out, rows)
  calls <- c(calls, paste(f[[1]], f[[2]], ":", deparse(f[[3]], width.cutoff = 500L)))
}
write_golden(out, "crr.csv", paste(c(calls,
  "mg_x <- cbind(age = mg$age, male = as.numeric(mg$sex == 'M'))",
  "tw_x <- model.matrix(~ bm_blasts_ge20 + steroids + tocilizumab + relevel(factor(tox_group), 'none'), tw)[, -1]",
  "tw: CR patients (lfs_cause not NA); bm_blasts_ge20 = bm_blasts_pct >= 20",
  "p_value = 2 * (1 - pnorm(abs(coef) / sqrt(diag(var))))"), collapse = "\n"), pk)
