package com.s3bguploader.test

import android.app.Application
import android.app.Notification
import android.app.NotificationManager
import android.app.PendingIntent
import android.content.ComponentName
import android.content.ContentProvider
import android.content.ContentValues
import android.content.Context
import android.content.ContextWrapper
import android.content.Intent
import android.content.IntentFilter
import android.content.res.Resources
import android.database.Cursor
import android.net.ConnectivityManager
import android.net.Network
import android.net.NetworkCapabilities
import android.net.Uri
import android.os.Build
import android.os.Bundle
import android.os.Looper
import android.os.ParcelFileDescriptor
import com.s3bguploader.ContentFileOpener
import com.s3bguploader.NetworkMonitor
import com.s3bguploader.UploadNotifications
import com.s3bguploader.core.AggregateState
import com.s3bguploader.core.NoHandle
import com.s3bguploader.core.OsProgress
import com.s3bguploader.core.TransferSummary
import com.s3bguploader.core.UploadEngine
import org.junit.After
import org.junit.Assert.assertArrayEquals
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotEquals
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertNull
import org.junit.Assert.assertTrue
import org.junit.Before
import org.junit.Test
import org.junit.runner.RunWith
import org.robolectric.Robolectric
import org.robolectric.RobolectricTestRunner
import org.robolectric.RuntimeEnvironment
import org.robolectric.Shadows.shadowOf
import org.robolectric.annotation.Config
import org.robolectric.shadows.ShadowNetwork
import org.robolectric.shadows.ShadowNetworkCapabilities
import org.robolectric.util.ReflectionHelpers
import java.io.File
import java.util.Collections

/** An engine that only records what it is told about the network. */
class RecordingEngine : UploadEngine(NoHandle) {
    val states: MutableList<Pair<Boolean, Boolean>> = Collections.synchronizedList(mutableListOf())

    override fun setNetworkState(online: Boolean, metered: Boolean) {
        states += online to metered
    }
}

/**
 * What ContentResolver hands out for a provider's file on Android: a wrapper
 * that holds the provider (its process stays bound) until it is closed.
 */
class ProviderHeldDescriptor(inner: ParcelFileDescriptor) : ParcelFileDescriptor(inner) {
    @Volatile var closed = false

    override fun close() {
        closed = true
        super.close()
    }
}

/** [TestFilesProvider]'s files, each handed out in a [ProviderHeldDescriptor], kept for the test. */
class HoldingFilesProvider : ContentProvider() {
    private val files = TestFilesProvider()
    override fun onCreate() = true

    override fun openFile(uri: Uri, mode: String): ParcelFileDescriptor =
        ProviderHeldDescriptor(files.openFile(uri, mode)).also { handedOut += it }

    override fun query(uri: Uri, p: Array<out String>?, s: String?, a: Array<out String>?, o: String?): Cursor? = null
    override fun getType(uri: Uri): String = "application/octet-stream"
    override fun insert(uri: Uri, values: ContentValues?): Uri? = null
    override fun delete(uri: Uri, s: String?, a: Array<out String>?) = 0
    override fun update(uri: Uri, v: ContentValues?, s: String?, a: Array<out String>?) = 0

    companion object {
        const val AUTHORITY = "com.s3bguploader.test.held"
        val handedOut: MutableList<ProviderHeldDescriptor> = Collections.synchronizedList(mutableListOf())
        fun uri(name: String) = "content://$AUTHORITY/document/$name"
    }
}

@RunWith(RobolectricTestRunner::class)
@Config(shadows = [DetachableParcelFileDescriptor::class])
class PlatformPartsTest {
    private lateinit var app: Application
    private lateinit var cm: ConnectivityManager
    private var monitor: NetworkMonitor? = null

    @Before
    fun setUp() {
        TestSetup.before()
        app = RuntimeEnvironment.getApplication()
        cm = app.getSystemService(ConnectivityManager::class.java)!!
    }

    @After
    fun tearDown() {
        monitor?.stop()
        TestSetup.after()
    }

    private fun caps(vararg capabilities: Int): NetworkCapabilities {
        val nc = ShadowNetworkCapabilities.newInstance()
        capabilities.forEach { shadowOf(nc).addCapability(it) }
        return nc
    }

    private val internet = NetworkCapabilities.NET_CAPABILITY_INTERNET
    private val validated = NetworkCapabilities.NET_CAPABILITY_VALIDATED
    private val unmetered = NetworkCapabilities.NET_CAPABILITY_NOT_METERED

    /** Starts a monitor on [engine] and returns the callback Android would call. */
    private fun startMonitor(engine: UploadEngine): ConnectivityManager.NetworkCallback {
        monitor = NetworkMonitor.start(app, engine)
        assertNotNull(monitor)
        val callbacks = shadowOf(cm).networkCallbacks
        assertEquals("one default-network callback", 1, callbacks.size)
        return callbacks.first()
    }

    /** What Android sends when [network] becomes the default (API 29+): one dispatch. */
    private fun becomesDefault(cb: ConnectivityManager.NetworkCallback, network: Network, nc: NetworkCapabilities, blocked: Boolean) {
        cb.onAvailable(network)
        cb.onCapabilitiesChanged(network, nc)
        cb.onBlockedStatusChanged(network, blocked)
    }

    @Test
    // Blocked status reports exist from API 29.
    @Config(minSdk = 29)
    fun onlineMeansValidatedAndNotBlockedAndOnlyChangesAreReported() {
        val engine = RecordingEngine()
        val cb = startMonitor(engine)
        // The default network at start: Wi-Fi, validated (TestSetup).
        assertEquals(listOf(true to false), engine.states.toList())
        // The same capabilities again: nothing new.
        cb.onCapabilitiesChanged(cm.activeNetwork!!, caps(internet, validated, unmetered))
        assertEquals(1, engine.states.size)

        // Mobile data becomes the default, not validated yet: offline, metered.
        val mobile = ShadowNetwork.newInstance(201)
        becomesDefault(cb, mobile, caps(internet), blocked = false)
        // Validated: online.
        cb.onCapabilitiesChanged(mobile, caps(internet, validated))
        // Android blocks the app's network (a cached process, Doze): offline.
        cb.onBlockedStatusChanged(mobile, true)
        cb.onBlockedStatusChanged(mobile, false)
        cb.onLost(mobile)

        // A network that arrives blocked is never reported online meanwhile.
        val wifi = ShadowNetwork.newInstance(202)
        becomesDefault(cb, wifi, caps(internet, validated, unmetered), blocked = true)
        val whileBlocked = engine.states.toList()
        cb.onBlockedStatusChanged(wifi, false)
        // A late onLost for an older network changes nothing.
        cb.onLost(mobile)
        // A captive portal: Android withdraws VALIDATED.
        cb.onCapabilitiesChanged(wifi, caps(internet, unmetered, NetworkCapabilities.NET_CAPABILITY_CAPTIVE_PORTAL))
        shadowOf(Looper.getMainLooper()).idle()

        assertEquals(
            listOf(
                true to false, // Wi-Fi at start
                false to true, // mobile, not validated
                true to true, // validated
                false to true, // blocked
                true to true, // unblocked
                false to false, // lost
                true to false, // Wi-Fi unblocked
                false to false, // captive portal
            ),
            engine.states.toList(),
        )
        assertEquals("nothing while the new network was blocked", 6, whileBlocked.size)
        engine.states.zipWithNext().forEach { (a, b) -> assertNotEquals("a repeated report", a, b) }
    }

    @Test
    // Blocked status reports exist from API 29.
    @Config(minSdk = 29)
    fun withoutABlockedStatusAfterOnAvailableTheStateIsReportedOnceTheDispatchIsOver() {
        val engine = RecordingEngine()
        val cb = startMonitor(engine)
        val mobile = ShadowNetwork.newInstance(301)
        cb.onAvailable(mobile)
        cb.onCapabilitiesChanged(mobile, caps(internet, validated))
        assertEquals("held for the blocked status", listOf(true to false), engine.states.toList())
        shadowOf(Looper.getMainLooper()).idle()
        assertEquals(listOf(true to false, true to true), engine.states.toList())
    }

    @Test
    fun beforeApi26OnAvailableReadsTheCapabilitiesItself() {
        val engine = RecordingEngine()
        val cb = startMonitor(engine)
        val mobile = ShadowNetwork.newInstance(401)
        shadowOf(cm).setNetworkCapabilities(mobile, caps(internet, validated))
        val sdk = Build.VERSION.SDK_INT
        // API 24-25 send onAvailable alone: no onCapabilitiesChanged follows.
        ReflectionHelpers.setStaticField(Build.VERSION::class.java, "SDK_INT", 25)
        try {
            cb.onAvailable(mobile)
        } finally {
            ReflectionHelpers.setStaticField(Build.VERSION::class.java, "SDK_INT", sdk)
        }
        assertEquals(listOf(true to false, true to true), engine.states.toList())
    }

    // --- Notifications ---

    private fun progress(done: ULong, total: ULong, indeterminate: Boolean = false, workRemains: Boolean = true) =
        OsProgress(
            "Uploading 1 of 2 files", "1 MB of 4 MB", done, total, indeterminate, workRemains,
            TransferSummary(null, AggregateState.EMPTY, 2u, 1u, 0u, 0u, 1u, 0u, 0u, 0u, total, done, 0u, 0u),
        )

    private fun Notification.progress() = extras.getInt(Notification.EXTRA_PROGRESS)
    private fun Notification.indeterminate() = extras.getBoolean(Notification.EXTRA_PROGRESS_INDETERMINATE)
    private fun Notification.ongoing() = flags and Notification.FLAG_ONGOING_EVENT != 0

    @Test
    fun buildShowsTheEnginesProgressAsAClampedPercentage() {
        val n = UploadNotifications.build(app, progress((1 * MIB).toULong(), (4 * MIB).toULong()))
        if (hasNotificationChannels) assertEquals(UploadNotifications.CHANNEL_ID, n.channelId)
        assertEquals("Uploading 1 of 2 files", n.extras.getCharSequence(Notification.EXTRA_TITLE).toString())
        assertEquals("1 MB of 4 MB", n.extras.getCharSequence(Notification.EXTRA_TEXT).toString())
        assertEquals(100, n.extras.getInt(Notification.EXTRA_PROGRESS_MAX))
        assertEquals(25, n.progress())
        assertFalse(n.indeterminate())
        assertTrue(n.ongoing())
        assertTrue("alerts once", n.flags and Notification.FLAG_ONLY_ALERT_ONCE != 0)

        assertEquals("rounded down", 99, UploadNotifications.build(app, progress(999u, 1000u)).progress())
        assertEquals("clamped", 100, UploadNotifications.build(app, progress(5000u, 4000u)).progress())
        val unknown = UploadNotifications.build(app, progress(0u, 0u))
        assertTrue("no total: indeterminate", unknown.indeterminate())
        assertTrue(UploadNotifications.build(app, progress(10u, 100u, indeterminate = true)).indeterminate())
        assertFalse("no work left: dismissable", UploadNotifications.build(app, progress(100u, 100u, workRemains = false)).ongoing())
    }

    @Test
    // Notification channels exist from API 26.
    @Config(minSdk = 26)
    fun thePlaceholderNeedsNoEngineAndTheChannelIsCreatedOncePerProcess() {
        val nm = app.getSystemService(NotificationManager::class.java)!!
        assertNull(nm.getNotificationChannel(UploadNotifications.CHANNEL_ID))
        val p = UploadNotifications.placeholder(app)
        assertEquals(UploadNotifications.CHANNEL_ID, p.channelId)
        assertEquals("Uploading", p.extras.getCharSequence(Notification.EXTRA_TITLE).toString())
        assertTrue(p.indeterminate())
        assertTrue(p.ongoing())
        // No meta-data: the system upload icon.
        assertEquals(android.R.drawable.stat_sys_upload, p.smallIcon.resId)

        val channel = nm.getNotificationChannel(UploadNotifications.CHANNEL_ID)
        assertNotNull(channel)
        // The app defines no s3bgu_notification_channel_* strings: the defaults.
        assertEquals("Uploads", channel.name.toString())
        assertEquals("Progress of background uploads", channel.description)
        assertEquals(NotificationManager.IMPORTANCE_LOW, channel.importance)

        // Updates make no channel call: a channel removed behind the
        // module's back stays removed through them.
        nm.deleteNotificationChannel(UploadNotifications.CHANNEL_ID)
        repeat(3) { UploadNotifications.build(app, progress(it.toULong(), 10u)) }
        assertNull(nm.getNotificationChannel(UploadNotifications.CHANNEL_ID))
    }

    @Test
    // Notification channels exist from API 26.
    @Config(minSdk = 26)
    fun theChannelNameDescriptionAndPlaceholderTitleComeFromTheAppsStrings() {
        val strings = mapOf(
            "s3bgu_notification_channel_name" to "Envois",
            "s3bgu_notification_channel_description" to "Progression des envois",
            "s3bgu_notification_placeholder_title" to "Envoi en cours",
        )
        val ids = strings.keys.withIndex().associate { (i, name) -> name to 0x7f140000 + i }
        val base = app.resources
        @Suppress("DEPRECATION")
        val res = object : Resources(base.assets, base.displayMetrics, base.configuration) {
            override fun getIdentifier(name: String, defType: String?, defPackage: String?): Int =
                if (defType == "string" && defPackage == app.packageName) ids[name] ?: 0 else 0

            override fun getString(id: Int): String =
                ids.entries.firstOrNull { it.value == id }?.let { strings.getValue(it.key) } ?: super.getString(id)
        }
        // The app as the module sees it: its own resources.
        val localized = object : ContextWrapper(app) {
            override fun getResources(): Resources = res
            override fun getApplicationContext(): Context = this
        }
        val p = UploadNotifications.placeholder(localized)
        assertEquals("Envoi en cours", p.extras.getCharSequence(Notification.EXTRA_TITLE).toString())
        val channel = app.getSystemService(NotificationManager::class.java)!!.getNotificationChannel(UploadNotifications.CHANNEL_ID)
        assertEquals("Envois", channel.name.toString())
        assertEquals("Progression des envois", channel.description)
    }

    private fun declareIcon(resource: Int) {
        val info = shadowOf(app.packageManager).getInternalMutablePackageInfo(app.packageName).applicationInfo!!
        info.metaData = Bundle().apply { putInt(UploadNotifications.ICON_META_DATA, resource) }
    }

    @Test
    fun theSmallIconIsTheOneTheAppDeclaresInItsManifest() {
        declareIcon(android.R.drawable.ic_menu_upload)
        assertEquals(android.R.drawable.ic_menu_upload, UploadNotifications.placeholder(app).smallIcon.resId)
        assertEquals(android.R.drawable.ic_menu_upload, UploadNotifications.build(app, progress(1u, 2u)).smallIcon.resId)
    }

    @Test
    fun aDeclaredIconThatIsNotADrawableFallsBackToTheSystemIcon() {
        // A string, not a drawable: posting it would throw on the device.
        declareIcon(android.R.string.ok)
        assertEquals(android.R.drawable.stat_sys_upload, UploadNotifications.placeholder(app).smallIcon.resId)
    }

    @Test
    fun theTapIntentHasItsOwnRequestCodeAndNeverOverwritesTheAppsPendingIntent() {
        val launcher = ComponentName(app.packageName, "com.example.MainActivity")
        val pm = shadowOf(app.packageManager)
        pm.addActivityIfNotPresent(launcher)
        pm.addIntentFilterForActivity(launcher, IntentFilter(Intent.ACTION_MAIN).apply { addCategory(Intent.CATEGORY_LAUNCHER) })
        val launch = app.packageManager.getLaunchIntentForPackage(app.packageName)
        assertNotNull("a launcher activity", launch)
        // The app's own PendingIntent for its launcher intent, with an extra.
        val own = PendingIntent.getActivity(
            app, 0, Intent(launch).putExtra("screen", "inbox"),
            PendingIntent.FLAG_UPDATE_CURRENT or PendingIntent.FLAG_IMMUTABLE,
        )

        val tap = UploadNotifications.placeholder(app).contentIntent
        assertNotNull(tap)
        val shadow = shadowOf(tap)
        assertTrue(shadow.isActivity)
        assertEquals(launcher, shadow.savedIntent.component)
        assertEquals(UploadNotifications.CONTENT_REQUEST_CODE, shadow.requestCode)
        assertNotEquals(0, shadow.requestCode)
        assertEquals("no FLAG_UPDATE_CURRENT", 0, shadow.flags and PendingIntent.FLAG_UPDATE_CURRENT)
        assertTrue("immutable", shadow.flags and PendingIntent.FLAG_IMMUTABLE != 0)
        assertNotEquals(own, tap)
        assertEquals("the app's extra is intact", "inbox", shadowOf(own).savedIntent.getStringExtra("screen"))
    }

    // --- content:// files ---

    @Test
    fun theProvidersDescriptorIsClosedAtOnceAndADuplicateHandedToTheEngine() {
        TestFilesProvider.root = File(app.filesDir, "provider").also { it.mkdirs() }
        Robolectric.setupContentProvider(HoldingFilesProvider::class.java, HoldingFilesProvider.AUTHORITY)
        HoldingFilesProvider.handedOut.clear()
        val f = randomFile(TestFilesProvider.root, "photo.jpg", 70_001)

        val opened = ContentFileOpener(app.contentResolver).openFile(HoldingFilesProvider.uri("photo.jpg"))
        try {
            val held = HoldingFilesProvider.handedOut.single()
            assertTrue("the provider's descriptor is closed when openFile returns", held.closed)
            assertNull(opened.replacementUri)
            // The engine's descriptor still reads the file.
            assertArrayEquals(f.readBytes(), File("/proc/self/fd/${opened.fd}").readBytes())
        } finally {
            LibC.INSTANCE.close(opened.fd)
        }
    }

    @Test
    fun releasingAPersistableGrantGivesItBackOnce() {
        val resolver = app.contentResolver
        val uri = TestFilesProvider.uri("video.mp4")
        assertFalse("none held", ContentFileOpener.releasePersistablePermission(resolver, uri))
        assertTrue(ContentFileOpener.takePersistablePermission(resolver, uri))
        val other = TestFilesProvider.uri("other.mp4")
        assertTrue(ContentFileOpener.takePersistablePermission(resolver, other))
        assertTrue(resolver.persistedUriPermissions.any { it.uri == Uri.parse(uri) && it.isReadPermission })

        assertTrue(ContentFileOpener.releasePersistablePermission(resolver, uri))
        assertEquals(listOf(Uri.parse(other)), resolver.persistedUriPermissions.map { it.uri })
        assertFalse("already given back", ContentFileOpener.releasePersistablePermission(resolver, uri))
    }
}
