module lab/apps/smoke

go 1.25
