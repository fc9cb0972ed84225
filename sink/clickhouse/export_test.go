package clickhouse

// Test helpers for the external test package (clickhouse_test), which can
// import packages that may one day import this one (replay, cmd wiring).
var (
	TestDatabase = testDatabase
	Migrated     = migrated
	DumpAll      = dumpAll
	StartSink    = startSink
	ServerDSN    = serverDSN
)
