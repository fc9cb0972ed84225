package clickhouse_test

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	sink "github.com/crmpulse/crmpulse/sink/clickhouse"
)

var (
	zookeeperSection = regexp.MustCompile(`(?s)\s*<zookeeper>.*?</zookeeper>`)
	ddlSection       = regexp.MustCompile(`(?s)\s*<distributed_ddl>.*?</distributed_ddl>`)
	secondReplica    = regexp.MustCompile(`(?s)\s*<replica>\s*<host>ch-0\d-b</host>.*?</replica>`)
	replicaHost      = regexp.MustCompile(`(?s)<host>ch-0(\d)-a</host>\s*<port>9000</port>`)
)

// freePorts returns n ports nothing listens on right now.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		require.NoError(t, err)
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startShards starts the cluster of remote_servers.xml with one replica
// per shard on this machine: the files of this folder with the host names
// replaced by 127.0.0.1 and free ports, and without the ZooKeeper and
// distributed DDL sections (there is no ZooKeeper here).
func startShards(t *testing.T, s server) []server {
	t.Helper()
	script, err := filepath.Abs(repoPath("deploy", "local", "clickhouse.sh"))
	require.NoError(t, err)
	remote, err := os.ReadFile("remote_servers.xml")
	require.NoError(t, err)
	macros, err := os.ReadFile("macros.xml")
	require.NoError(t, err)

	ports := freePorts(t, 4) // native and HTTP of each server
	cluster := zookeeperSection.ReplaceAllString(string(remote), "")
	cluster = ddlSection.ReplaceAllString(cluster, "")
	cluster = secondReplica.ReplaceAllString(cluster, "")
	cluster = replicaHost.ReplaceAllStringFunc(cluster, func(m string) string {
		shard, _ := strconv.Atoi(replicaHost.FindStringSubmatch(m)[1])
		return fmt.Sprintf("<host>127.0.0.1</host>\n                    <port>%d</port>", ports[2*(shard-1)])
	})
	require.Equal(t, 2, strings.Count(cluster, "<host>127.0.0.1</host>"), "remote_servers.xml: two shards of ch-0N-a/b")

	var shards []server
	for i := range 2 {
		root := t.TempDir()
		confD := filepath.Join(root, "clickhouse", "config.d")
		require.NoError(t, os.MkdirAll(confD, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(confD, "remote_servers.xml"), []byte(cluster), 0o644))
		m := strings.NewReplacer("<shard>01</shard>", fmt.Sprintf("<shard>0%d</shard>", i+1),
			"ch-01-a", fmt.Sprintf("ch-0%d-a", i+1)).Replace(string(macros))
		require.NoError(t, os.WriteFile(filepath.Join(confD, "macros.xml"), []byte(m), 0o644))

		env := append(os.Environ(), "CRMPULSE_LOCAL="+root,
			"CLICKHOUSE_PORT="+strconv.Itoa(ports[2*i]), "CLICKHOUSE_HTTP_PORT="+strconv.Itoa(ports[2*i+1]))
		start := exec.Command(script, "start")
		start.Env = env
		out, err := start.CombinedOutput()
		t.Cleanup(func() {
			stop := exec.Command(script, "stop")
			stop.Env = env
			if out, err := stop.CombinedOutput(); err != nil {
				t.Logf("stopping shard %d: %v: %s", i+1, err, out)
			}
		})
		require.NoError(t, err, "starting shard %d: %s", i+1, out)
		u := *s.dsn
		u.Host = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[2*i]))
		u.User = nil
		shards = append(shards, server{dsn: &u, client: s.client})
	}
	return shards
}

// TestDistributedTwoShards runs the Distributed half of cluster.sql for
// real: two servers started for the test form the cluster of
// remote_servers.xml (one replica per shard: no ZooKeeper here, so the
// local tables are the plain twins of the replicated ones and there is no
// ON CLUSTER), the Distributed tables are created as cluster.sql writes
// them, docSeed is inserted through them, and the page's queries return
// through them what they return on one node. It also checks the point of
// the sharding keys: every copy of a row is on one shard, so FINAL through
// the Distributed table sees each row once.
func TestDistributedTwoShards(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: it starts two ClickHouse servers of its own")
	}
	s := realServer(t)
	shards := startShards(t, s)

	for i, sh := range shards {
		out, err := sh.run(t, "default", "SELECT substitution FROM system.macros WHERE macro IN ('cluster', 'shard') ORDER BY macro;\n"+
			"SELECT count() FROM system.clusters WHERE cluster = 'crmpulse';\n")
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("crmpulse\n0%d\n2\n", i+1), out, "macros.xml and remote_servers.xml are loaded")
	}

	// The schema on both shards, then the recorded versions once.
	var ddl, record strings.Builder
	for _, stmt := range sink.SplitStatements(loadCluster(t).src) {
		stmt = strings.Replace(stmt, onCluster, "", 1)
		stmt = replicatedEngine.ReplaceAllString(stmt, `ENGINE = $1($2)`)
		if strings.HasPrefix(stmt, "CREATE ") {
			ddl.WriteString(stmt + ";\n")
		} else {
			record.WriteString(stmt + ";\n")
		}
	}
	require.NotContains(t, ddl.String(), "Replicated")
	for _, sh := range shards {
		_, err := sh.run(t, "default", ddl.String())
		require.NoError(t, err)
	}
	_, err := shards[0].run(t, "default", record.String())
	require.NoError(t, err)

	for stmt := range strings.SplitSeq(strings.TrimSpace(docSeed), ";\n") {
		_, err := shards[0].run(t, database, "SET insert_distributed_sync = 1;\n"+strings.ReplaceAll(stmt, "\n", " ")+";\n")
		require.NoError(t, err)
	}

	// No row's copies are split between shards: FINAL, applied per shard,
	// sees each identity once.
	ref := loadSingleNode(t)
	for _, tb := range ref.tables {
		var perShard []string
		for _, sh := range shards {
			out, err := sh.run(t, database, "SELECT count() FROM "+tb.Name+"_local")
			require.NoError(t, err)
			perShard = append(perShard, strings.TrimSpace(out))
		}
		key := strings.Trim(tb.OrderBy, "()")
		out, err := shards[1].run(t, database, fmt.Sprintf(
			"SELECT (SELECT count() FROM %[1]s FINAL) = (SELECT count() FROM (SELECT DISTINCT %[2]s FROM %[1]s))", tb.Name, key))
		require.NoError(t, err)
		require.Equal(t, "1\n", out, "%s: rows per shard %v; a row's copies are on one shard", tb.Name, perShard)
	}
	// The keys spread these tables' seed rows over both shards (others'
	// few groups happen to hash to one).
	for _, name := range []string{"revenue", "activity_daily", "resend_outcomes", "customer_state"} {
		for i, sh := range shards {
			out, err := sh.run(t, database, "SELECT count() > 0 FROM "+name+"_local")
			require.NoError(t, err)
			require.Equal(t, "1\n", out, "%s: shard %d has rows", name, i+1)
		}
	}

	// The page's queries through the Distributed tables, from either shard.
	for _, b := range docBlocks(t) {
		want, ok := docWant[b.title]
		if !ok || docSingleNode[b.title] {
			continue
		}
		q := timeFilter.ReplaceAllString(b.sql,
			fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", grafanaFrom, grafanaTo))
		for i, sh := range shards {
			got, err := sh.run(t, database, q)
			require.NoError(t, err, "%q on shard %d", b.title, i+1)
			require.Equal(t, want, got, "%q on shard %d:\n%s", b.title, i+1, q)
		}
	}
}
