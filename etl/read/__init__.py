"""Read: turn each export (CSV in any encoding, Excel, SPSS, REDCap) into raw rows that keep
the row number a person sees."""
