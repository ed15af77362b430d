// pgjdbc over TLS: connects to the URL in args[0] as eddy (password from
// PGPASSWORD), runs one query, prints its answer and "ssl". The URL's sslmode
// (verify-full in the tests) makes a connection without TLS impossible.
import java.sql.Connection;
import java.sql.DriverManager;
import java.sql.ResultSet;

public class JdbcTls {
    public static void main(String[] args) throws Exception {
        try (Connection c = DriverManager.getConnection(args[0], "eddy", System.getenv("PGPASSWORD"));
             ResultSet r = c.createStatement().executeQuery("SELECT 40 + 2")) {
            r.next();
            System.out.println(r.getInt(1) + " ssl");
        }
    }
}
