// The JVM side of the privacy test: a token in argv, another in the
// environment, and values derived from the token as a local variable and
// an argument of the method that burns the CPU.
//   java SecretKeeper --token TOKEN SECONDS
import java.nio.charset.StandardCharsets;
import java.security.MessageDigest;

public class SecretKeeper {
    static volatile long sink;

    static String derive(String token, String purpose) throws Exception {
        byte[] d = MessageDigest.getInstance("SHA-256")
                .digest((token + ":" + purpose).getBytes(StandardCharsets.UTF_8));
        StringBuilder sb = new StringBuilder("cgs");
        for (int i = 0; i < 16; i++) sb.append(String.format("%02x", d[i]));
        return sb.toString();
    }

    static long processPayload(String payload, long until) {
        long n = 0;
        while (System.nanoTime() < until) {
            for (int i = 0; i < 10000; i++) n = n * 31 + payload.length() + i;
            sink = n;
        }
        return n;
    }

    static long handleRequest(String token, long until) throws Exception {
        String hush = derive(token, "local");
        String payload = derive(token, "arg");
        String env = System.getenv("CG_SECRET_ENV");
        return processPayload(payload, until) + hush.length() + (env == null ? 0 : env.length());
    }

    public static void main(String[] args) throws Exception {
        String token = args[1];
        long until = System.nanoTime() + (long) (Double.parseDouble(args[2]) * 1e9);
        handleRequest(token, until);
        System.out.println("ok");
    }
}
