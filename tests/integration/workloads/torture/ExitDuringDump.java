// A JVM that calls System.exit(CODE) after MS milliseconds while three
// threads spin, so that a profiler taking thread dumps at a high rate is
// often in the middle of one when the JVM goes away.
//   java ExitDuringDump MS CODE
public class ExitDuringDump {
    static volatile long sink;

    static void spin() {
        long x = 0;
        while (true) {
            for (int i = 0; i < 100000; i++) x = x * 31 + i;
            sink = x;
        }
    }

    public static void main(String[] args) throws Exception {
        long ms = Long.parseLong(args[0]);
        int code = Integer.parseInt(args[1]);
        for (int i = 0; i < 3; i++) {
            Thread t = new Thread(ExitDuringDump::spin, "spinner-" + i);
            t.setDaemon(true);
            t.start();
        }
        System.out.println("ready");
        System.out.flush();
        Thread.sleep(ms);
        System.exit(code);
    }
}
