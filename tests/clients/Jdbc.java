// pgjdbc's side of the client matrix (tests/tests/clients.rs): DatabaseMetaData,
// ResultSetMetaData and prepared statements, as JDBC tools (DBeaver, Metabase,
// Spark) call them.
//
//     java -cp /usr/share/java/postgresql.jar tests/clients/Jdbc.java HOST PORT USER DBNAME RELATIONS
//
// RELATIONS is a comma-separated list of the relations both engines hold.
// Prints one JSON object per line and per check: {"check", "result"}, or
// {"check", "error": "SQLSTATE message"} when the check failed, so one failure
// hides no other. Each check has its own connection.

import java.sql.Connection;
import java.sql.DatabaseMetaData;
import java.sql.DriverManager;
import java.sql.PreparedStatement;
import java.sql.ResultSet;
import java.sql.ResultSetMetaData;
import java.sql.SQLException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

public class Jdbc {
    static String url;
    static String user;
    static List<String> relations;

    // Eddy's own catalog schema: PostgreSQL has none such, and which system
    // schemas an engine has is not what the shared dataset is about.
    static final Set<String> ENGINE_SCHEMAS = Set.of("eddy_catalog");

    static final String REVENUE_FROM =
        "SELECT customer, orders, total FROM revenue WHERE orders >= ? AND customer <> ? "
            + "ORDER BY customer";

    interface Body {
        Object run(Connection c) throws Exception;
    }

    public static void main(String[] args) throws Exception {
        url = "jdbc:postgresql://" + args[0] + ":" + args[1] + "/" + args[3];
        user = args[2];
        relations = new ArrayList<>(Arrays.asList(args[4].split(",")));
        relations.sort(Comparator.naturalOrder());

        check("jdbc.getTables", c -> {
            // A view is a table in PostgreSQL and a materialized view in Eddy:
            // both kinds are asked for and only the names are compared, not
            // TABLE_TYPE. Sources and PostgreSQL's base tables are not part of
            // the shared dataset.
            Set<String> names = new TreeSet<>();
            try (ResultSet rs = c.getMetaData().getTables(
                    null, "public", "%", new String[] {"TABLE", "MATERIALIZED VIEW"})) {
                while (rs.next()) {
                    if (relations.contains(rs.getString("TABLE_NAME"))) {
                        names.add(rs.getString("TABLE_SCHEM") + "." + rs.getString("TABLE_NAME"));
                    }
                }
            }
            return new ArrayList<>(names);
        });

        check("jdbc.getColumns", c -> {
            Map<String, Object> out = new TreeMap<>();
            DatabaseMetaData md = c.getMetaData();
            for (String rel : relations) {
                List<Object> cols = new ArrayList<>();
                try (ResultSet rs = md.getColumns(null, "public", rel, "%")) {
                    while (rs.next()) {
                        cols.add(Arrays.asList(
                            rs.getString("COLUMN_NAME"),
                            rs.getString("TYPE_NAME"),
                            rs.getInt("DATA_TYPE"),
                            rs.getInt("NULLABLE"),
                            rs.getString("IS_NULLABLE"),
                            rs.getInt("ORDINAL_POSITION"),
                            rs.getInt("COLUMN_SIZE"),
                            rs.getInt("DECIMAL_DIGITS"),
                            rs.getString("COLUMN_DEF"),
                            rs.getString("IS_AUTOINCREMENT")));
                    }
                }
                out.put(rel, cols);
            }
            return out;
        });

        check("jdbc.getSchemas", c -> {
            Set<String> names = new TreeSet<>();
            try (ResultSet rs = c.getMetaData().getSchemas()) {
                while (rs.next()) {
                    names.add(rs.getString("TABLE_SCHEM"));
                }
            }
            names.removeAll(ENGINE_SCHEMAS);
            return new ArrayList<>(names);
        });

        check("jdbc.getPrimaryKeys", c -> {
            Map<String, Object> out = new TreeMap<>();
            DatabaseMetaData md = c.getMetaData();
            for (String rel : relations) {
                List<Object> keys = new ArrayList<>();
                try (ResultSet rs = md.getPrimaryKeys(null, "public", rel)) {
                    while (rs.next()) {
                        keys.add(Arrays.asList(
                            rs.getString("COLUMN_NAME"),
                            rs.getInt("KEY_SEQ"),
                            rs.getString("PK_NAME")));
                    }
                }
                out.put(rel, keys);
            }
            return out;
        });

        check("jdbc.getTypeInfo", c -> {
            // The common types' rows; the full list is every type of the
            // engine's pg_type, which is not the dataset's business.
            Set<String> common = Set.of("bool", "int2", "int4", "int8", "float4", "float8",
                "numeric", "text", "varchar", "date", "timestamp", "timestamptz");
            Map<String, Object> out = new TreeMap<>();
            try (ResultSet rs = c.getMetaData().getTypeInfo()) {
                while (rs.next()) {
                    String name = rs.getString("TYPE_NAME");
                    if (common.contains(name)) {
                        out.put(name, Arrays.asList(
                            rs.getInt("DATA_TYPE"),
                            rs.getInt("PRECISION"),
                            rs.getInt("NULLABLE"),
                            rs.getBoolean("CASE_SENSITIVE"),
                            rs.getBoolean("UNSIGNED_ATTRIBUTE")));
                    }
                }
            }
            return out;
        });

        check("jdbc.prepared_statement", c -> {
            try (PreparedStatement ps = c.prepareStatement(REVENUE_FROM)) {
                ps.setInt(1, 30);
                ps.setString(2, "c0");
                List<Object> rows = new ArrayList<>();
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        rows.add(Arrays.asList(rs.getString(1), rs.getLong(2), rs.getDouble(3)));
                    }
                }
                return rows;
            }
        });

        check("jdbc.prepared_repeated", c -> {
            // From the fifth execution on, pgjdbc uses a named server-side
            // statement (prepareThreshold).
            List<Object> counts = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(REVENUE_FROM)) {
                for (int n = 26; n <= 37; n++) {
                    ps.setInt(1, n);
                    ps.setString(2, "c0");
                    int count = 0;
                    try (ResultSet rs = ps.executeQuery()) {
                        while (rs.next()) {
                            count++;
                        }
                    }
                    counts.add(count);
                }
            }
            return counts;
        });

        check("jdbc.typed_values", c -> {
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT (SELECT SUM(orders) FROM revenue) AS orders, "
                        + "(SELECT CAST(SUM(total) AS NUMERIC(12,2)) FROM revenue) AS total, "
                        + "(SELECT MIN(ts) FROM big_orders) AS first_ts, "
                        + "(SELECT MAX(amount) FROM big_orders) AS largest");
                 ResultSet rs = ps.executeQuery()) {
                rs.next();
                return Arrays.asList(
                    rs.getBigDecimal(1).toPlainString(),
                    rs.getBigDecimal(2).toPlainString(),
                    rs.getTimestamp(3).toString(),
                    rs.getDouble(4));
            }
        });

        check("jdbc.resultSetMetaData", c -> {
            // isNullable and getBaseTableName make pgjdbc look the columns up
            // in pg_attribute and pg_class by the RowDescription's table OID.
            Map<String, Object> out = new TreeMap<>();
            for (String rel : relations) {
                try (PreparedStatement ps = c.prepareStatement("SELECT * FROM " + rel + " LIMIT 0");
                     ResultSet rs = ps.executeQuery()) {
                    ResultSetMetaData md = rs.getMetaData();
                    org.postgresql.PGResultSetMetaData pg =
                        md.unwrap(org.postgresql.PGResultSetMetaData.class);
                    List<Object> cols = new ArrayList<>();
                    for (int i = 1; i <= md.getColumnCount(); i++) {
                        cols.add(Arrays.asList(
                            md.getColumnName(i),
                            md.getColumnTypeName(i),
                            md.getColumnType(i),
                            md.getPrecision(i),
                            md.getScale(i),
                            md.isNullable(i),
                            pg.getBaseTableName(i),
                            pg.getBaseColumnName(i)));
                    }
                    out.put(rel, cols);
                }
            }
            return out;
        });

        check("jdbc.fetch_size_cursor", c -> {
            // Outside autocommit, a fetch size makes pgjdbc read through a
            // portal, a few rows per Execute.
            c.setAutoCommit(false);
            List<Object> ids = new ArrayList<>();
            try (PreparedStatement ps = c.prepareStatement(
                    "SELECT order_id FROM big_orders ORDER BY order_id")) {
                ps.setFetchSize(7);
                try (ResultSet rs = ps.executeQuery()) {
                    while (rs.next()) {
                        ids.add(rs.getLong(1));
                    }
                }
            }
            c.commit();
            return Arrays.asList(ids.size(), ids.get(0), ids.get(ids.size() - 1));
        });
    }

    static void check(String name, Body body) {
        String line;
        try (Connection c = DriverManager.getConnection(url, user, System.getenv().getOrDefault("PGPASSWORD", ""))) {
            line = "{\"check\":" + json(name) + ",\"result\":" + json(body.run(c)) + "}";
        } catch (SQLException e) {
            // The server's own message, without pgjdbc's "ERROR: " and position.
            String message = e.getMessage();
            if (e instanceof org.postgresql.util.PSQLException p
                    && p.getServerErrorMessage() != null) {
                message = p.getServerErrorMessage().getMessage();
            }
            line = "{\"check\":" + json(name) + ",\"error\":"
                + json(e.getSQLState() + " " + message) + "}";
        } catch (Exception e) {
            line = "{\"check\":" + json(name) + ",\"error\":"
                + json(e.getClass().getSimpleName() + ": " + e.getMessage()) + "}";
        }
        System.out.println(line);
    }

    /** JSON for the few shapes the checks return: maps, lists, strings, numbers, booleans. */
    static String json(Object v) {
        if (v == null) {
            return "null";
        }
        if (v instanceof String s) {
            StringBuilder b = new StringBuilder("\"");
            for (char ch : s.toCharArray()) {
                switch (ch) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\t' -> b.append("\\t");
                    case '\r' -> b.append("\\r");
                    default -> {
                        if (ch < 0x20) {
                            b.append(String.format("\\u%04x", (int) ch));
                        } else {
                            b.append(ch);
                        }
                    }
                }
            }
            return b.append('"').toString();
        }
        if (v instanceof Map<?, ?> m) {
            List<String> parts = new ArrayList<>();
            for (Map.Entry<?, ?> e : m.entrySet()) {
                parts.add(json(String.valueOf(e.getKey())) + ":" + json(e.getValue()));
            }
            return "{" + String.join(",", parts) + "}";
        }
        if (v instanceof List<?> l) {
            List<String> parts = new ArrayList<>();
            for (Object o : l) {
                parts.add(json(o));
            }
            return "[" + String.join(",", parts) + "]";
        }
        if (v instanceof Number || v instanceof Boolean) {
            return v.toString();
        }
        return json(v.toString());
    }
}
